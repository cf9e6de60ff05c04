import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { access, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { systemClock } from '../adapters/clock/system-clock.js';
import { CsvWriter } from '../adapters/fs/csv-writer.js';
import { loadFeatureSets } from '../adapters/fs/feature-set-files.js';
import { fileRows, writeHandbookCsv } from '../adapters/fs/handbook-csv.js';
import { FsModelFolders } from '../adapters/fs/model-folders.js';
import { FsModelRepository } from '../adapters/fs/model-repository.js';
import { readTopicHistory, type TopicHistory } from '../adapters/kafka/topic-history.js';
import { ensureTopics } from '../adapters/kafka/topics.js';
import { MemoryFeatureStore } from '../adapters/memory/memory-store.js';
import { OnnxModelRuntime } from '../adapters/onnx/onnx-runtime.js';
import { PythonTrainer } from '../adapters/python/trainer.js';
import { runTrainingModule } from '../adapters/python/training-module.js';
import { RedisControlPlane } from '../adapters/redis/redis-control-plane.js';
import { loadConfig } from '../config.js';
import type { CompiledFeatureSet } from '../domain/features/engine.js';
import { DAY_MS } from '../domain/features/time.js';
import { joinLabels } from '../domain/history.js';
import type { Logger } from '../ports/logger.js';
import type { RowSource } from '../ports/row-source.js';
import { backfill } from '../usecases/backfill.js';
import { ModelRegistry } from '../usecases/models/registry.js';
import { replay } from '../usecases/replay.js';
import {
  type Champion,
  type HistoryStats,
  type RetrainRequest,
  type RetrainResult,
  retrain,
} from '../usecases/retrain.js';
import { connected, createRedisClient } from './stores.js';

/**
 * `fraudscore backfill`: the history through the engine with the in-memory store, into a CSV file.
 * `graceMs` (default one day) is the retention beyond the set's lookback, for events that arrive late.
 */
export function backfillToCsv(
  source: RowSource,
  o: {
    readonly set: CompiledFeatureSet;
    readonly output: string;
    readonly graceMs?: number;
    readonly onProgress?: (done: number) => void;
  },
): Promise<{ rows: number }> {
  return backfill(source, {
    set: o.set,
    store: new MemoryFeatureStore({ horizonMs: o.set.lookbackMs + (o.graceMs ?? DAY_MS) }),
    sink: new CsvWriter(o.output),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
}

/** The feature sets defined in `dir` (FEATURE_DIR), compiled. */
export function featureSetsFrom(dir: string): ReadonlyMap<string, CompiledFeatureSet> {
  return loadFeatureSets(dir);
}

/** `fraudscore backfill` over handbook-format CSV files (plain or gzip), read in time order. */
export function backfillFiles(
  inputs: readonly string[],
  o: Parameters<typeof backfillToCsv>[1],
): Promise<{ rows: number }> {
  return backfillToCsv(fileRows(inputs), o);
}

export type SqlEngine = 'duckdb' | 'spark';

/**
 * `fraudscore backfill --engine duckdb|spark`: the same training set computed by the feature set compiled to SQL
 * (training/fraudscore_training/sqlbackfill.py) in the training venv's Python. The set's definition is handed
 * over as parsed here (defaults filled in), so both sides compute the same features. `memory` is DuckDB's
 * memory_limit or the local Spark driver's memory (e.g. `4GB`); `parquet` a folder partitioned by day.
 */
export async function backfillWithSql(
  engine: SqlEngine,
  inputs: readonly string[],
  o: {
    readonly set: CompiledFeatureSet;
    readonly output?: string;
    readonly parquet?: string;
    readonly memory?: string;
  },
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fraudscore-sql-'));
  try {
    const definition = join(dir, `${o.set.id}.json`);
    await writeFile(definition, JSON.stringify(o.set.definition));
    await runTrainingModule('sqlbackfill', [
      ...['--engine', engine, '--feature-set', definition, '--input', ...inputs.map((p) => resolve(p))],
      ...(o.output ? ['--output', resolve(o.output)] : []),
      ...(o.parquet ? ['--parquet', resolve(o.parquet)] : []),
      ...(o.memory ? ['--memory', o.memory] : []),
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The history `source` gives (retrain's: up to its last day) through a SQL engine: written once as a
 * handbook-format file, which the engine reads. A label's LABELED_AT goes along (ISO-8601 in UTC, exact to the
 * millisecond): the SQL applies a label that arrives after its transaction from that time on, as the node
 * engine does (training/fraudscore_training/sqlfeatures.py).
 */
async function sqlBackfillOf(
  engine: SqlEngine,
  source: RowSource,
  o: { readonly set: CompiledFeatureSet; readonly output: string; readonly workDir: string },
): Promise<void> {
  const history = join(o.workDir, 'history.csv');
  const csv = new CsvWriter(history);
  const columns = ['TRANSACTION_ID', 'TX_DATETIME', 'CUSTOMER_ID', 'TERMINAL_ID', 'TX_AMOUNT', 'TX_FRAUD'];
  for (const c of [...columns, 'LABELED_AT']) csv.text(c);
  csv.endRow();
  await source(
    (r) => {
      csv.text(r.id);
      csv.text(r.datetime);
      csv.text(r.customer_id);
      csv.text(r.terminal_id);
      csv.number(r.amount);
      csv.text(r.fraud ? '1' : '0');
      csv.text(r.labeledAt === undefined ? '' : new Date(r.labeledAt).toISOString());
      csv.endRow();
    },
    () => csv.flush(),
  );
  await csv.close();
  await backfillWithSql(engine, [history], { set: o.set, output: o.output });
}

/**
 * `fraudscore replay`: handbook-format files into the transactions and labels topics (created with
 * `partitions` partitions when missing) through an idempotent producer, at `rate` transactions per second.
 */
export async function replayFilesToKafka(
  inputs: readonly string[],
  o: {
    readonly brokers: readonly string[];
    readonly topics: { readonly transactions: string; readonly labels: string };
    readonly partitions: number;
    readonly rate: number;
    readonly onProgress?: (sent: number) => void;
  },
): Promise<{ transactions: number; labels: number }> {
  const kafka = new Kafka({
    clientId: 'fraudscore-replay',
    brokers: [...o.brokers],
    logLevel: logLevel.WARN,
  });
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [
    { topic: o.topics.transactions, numPartitions: o.partitions },
    { topic: o.topics.labels, numPartitions: o.partitions },
  ]);
  await admin.disconnect();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    return await replay(
      fileRows(inputs),
      {
        send: async (which, messages) =>
          void (await producer.send({ topic: o.topics[which], messages: [...messages] })),
      },
      { rate: o.rate, ...(o.onProgress ? { onProgress: o.onProgress } : {}) },
    );
  } finally {
    await producer.disconnect();
  }
}

const quiet = { info() {}, warn() {}, error() {} };

/**
 * A model registry over the versions in `dir`, for the `fraudscore models` commands that need no server
 * (list, validate): loads run the full check (checksums, names, golden examples, warm-up), unbatched, silent.
 */
export function offlineModelRegistry(
  dir: string,
  featureSets: ReadonlyMap<string, CompiledFeatureSet>,
  defaultModel: string,
): ModelRegistry {
  return new ModelRegistry({
    source: new FsModelRepository({ dir, runtime: new OnnxModelRuntime(), featureSets }),
    logger: quiet,
    clock: systemClock,
    defaultModel,
    batching: { enabled: false, maxRows: 1, maxWaitMs: 0 },
    psiWindow: 100,
  });
}

/** Backfill engines `fraudscore retrain` can pass the history through: the reference, and the SQL engines. */
export const BACKFILL_ENGINES = ['node', 'duckdb', 'spark'] as const;

export interface RetrainFilesOptions extends Omit<RetrainRequest, 'workDir' | 'featureDir'> {
  readonly inputs: readonly string[];
  /** Last day of history used (inclusive, YYYY-MM-DD); default: everything in the inputs. */
  readonly until?: string;
  readonly modelDir: string;
  readonly featureDir: string;
  /** The champion by version; default: the control plane's active version, else the latest eligible on disk. */
  readonly champion?: string;
  /**
   * Settings naming the shared control plane (REDIS_URL or REDIS_CLUSTER_NODES, REDIS_KEY_PREFIX), whose active
   * version is the default champion; the CLI passes its environment. Without them no control plane is read.
   */
  readonly controlPlane?: Record<string, string | undefined>;
  readonly python: string;
  readonly trainingDir: string;
  readonly workDir?: string;
  readonly keepWork?: boolean;
  readonly logger: Logger;
  readonly onProgress?: (step: string, done: number) => void;
}

/**
 * `fraudscore retrain` over handbook-format files: wires the retrain use case to the node backfill (the
 * service's feature engine, in memory), the Python trainer, MODEL_DIR and — when REDIS_URL or
 * REDIS_CLUSTER_NODES is set — the control plane, whose active version is the champion.
 */
export function retrainFromFiles(o: RetrainFilesOptions): Promise<RetrainResult> {
  return retrainOver(o, () => fingerprintFiles(o.inputs, o.until));
}

async function retrainOver(
  o: RetrainFilesOptions,
  fingerprint: () => Promise<Record<string, unknown>>,
): Promise<RetrainResult> {
  const sets = featureSetsFrom(o.featureDir);
  const untilMs = o.until ? Date.parse(`${o.until}T00:00:00Z`) + DAY_MS : Number.POSITIVE_INFINITY;
  const repo = new FsModelRepository({ dir: o.modelDir, runtime: new OnnxModelRuntime(), featureSets: sets });
  const registry = offlineModelRegistry(o.modelDir, sets, o.name);
  const workDir = o.workDir ?? (await mkdtemp(join(tmpdir(), 'fraudscore-retrain-')));
  const featureSetOf = async (version: string) => {
    const m = await repo.readManifest(o.name, version);
    return `${m.feature_set.name}_v${m.feature_set.version}`;
  };
  try {
    return await retrain(
      { ...o, workDir },
      {
        folders: new FsModelFolders(o.modelDir),
        trainer: new PythonTrainer({ python: o.python, packageDir: o.trainingDir }),
        backfill: async (featureSet, engine, output, onProgress) => {
          if (!(BACKFILL_ENGINES as readonly string[]).includes(engine))
            throw new Error(
              `backfill engine ${engine} is not available here (known: ${BACKFILL_ENGINES.join(', ')})`,
            );
          const set = sets.get(featureSet);
          if (!set)
            throw new Error(`unknown feature set ${featureSet} (known: ${[...sets.keys()].join(', ')})`);
          const stats = { rows: 0, frauds: 0, labeledAt: 0, firstMs: Number.NaN, lastMs: Number.NaN };
          const source: RowSource = (onRow, afterChunk) =>
            fileRows(o.inputs)((row) => {
              if (row.t >= untilMs) return;
              if (stats.rows === 0) stats.firstMs = row.t;
              stats.lastMs = row.t;
              stats.rows++;
              if (row.fraud) stats.frauds++;
              if (row.fraud && row.labeledAt !== undefined && row.labeledAt > row.t) stats.labeledAt++;
              onRow(row);
            }, afterChunk);
          if (engine === 'node') await backfillToCsv(source, { set, output, onProgress });
          else await sqlBackfillOf(engine as SqlEngine, source, { set, output, workDir });
          if (stats.rows === 0) throw new Error(`no transactions in the inputs up to ${o.until}`);
          return stats satisfies HistoryStats;
        },
        champion: async (name): Promise<Champion | undefined> => {
          if (o.champion)
            return { version: o.champion, source: 'option', featureSet: await featureSetOf(o.champion) };
          const active = o.controlPlane && (await activeFromControlPlane(name, o.controlPlane, o.logger));
          if (active)
            return { version: active, source: 'control_plane', featureSet: await featureSetOf(active) };
          const latest = await registry.latestPromotable(name, false);
          return latest
            ? { version: latest, source: 'latest_eligible', featureSet: await featureSetOf(latest) }
            : undefined;
        },
        verify: async (folder, name, version) => {
          // The repository reads <dir>/<name>/<version>: the staged folder is linked into that shape.
          const dir = join(workDir, 'verify');
          await mkdir(join(dir, name), { recursive: true });
          await symlink(folder, join(dir, name, version), 'dir');
          try {
            const v = await new FsModelRepository({
              dir,
              runtime: new OnnxModelRuntime(),
              featureSets: sets,
            }).load(name, version);
            await Promise.all(v.sessions.map((s) => s.release()));
          } finally {
            await rm(dir, { recursive: true, force: true });
          }
        },
        fingerprint,
        code: gitCommit,
        logger: o.logger,
        now: () => performance.now(),
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      },
    );
  } finally {
    try {
      await registry.close();
    } finally {
      if (!o.keepWork && !o.workDir) await rm(workDir, { recursive: true, force: true });
    }
  }
}

/** What `exportKafkaHistory` read and wrote. */
export interface KafkaHistoryExport {
  /** The handbook-format file written. */
  readonly path: string;
  /** Rows written: one per transaction. */
  readonly rows: number;
  /** Valid messages read. */
  readonly transactions: number;
  readonly labels: number;
  /** Messages the worker's schemas refuse, skipped. */
  readonly invalid: { readonly transactions: number; readonly labels: number };
  readonly duplicateTransactions: number;
  /** Labels of a transaction the topics do not hold. */
  readonly unknownLabels: number;
  /** Labels replaced by a later one of the same transaction. */
  readonly supersededLabels: number;
  /** Rows with a field the handbook format cannot hold (comma, quote, line break), skipped. */
  readonly unwritable: number;
  /** Per topic and partition, the offsets read: [from, to). */
  readonly offsets: TopicHistory['offsets'];
  readonly incomplete: TopicHistory['incomplete'];
}

/**
 * The transactions and labels topics, up to their high watermarks at the start, as one handbook-format file
 * (`output`), in event-time order: each transaction with its last label (see `joinLabels`). Holds the whole
 * history in memory to sort it.
 */
export async function exportKafkaHistory(o: {
  readonly brokers: readonly string[];
  readonly topics: { readonly transactions: string; readonly labels: string };
  readonly output: string;
  readonly logger: Logger;
}): Promise<KafkaHistoryExport> {
  const read = await readTopicHistory(o);
  const joined = joinLabels(read.transactions, read.labels);
  const { written, unwritable } = await writeHandbookCsv(o.output, joined.rows);
  const result: KafkaHistoryExport = {
    path: o.output,
    rows: written,
    transactions: read.transactions.length,
    labels: read.labels.length,
    invalid: read.invalid,
    duplicateTransactions: joined.duplicateTransactions,
    unknownLabels: joined.unknownLabels,
    supersededLabels: joined.supersededLabels,
    unwritable,
    offsets: read.offsets,
    incomplete: read.incomplete,
  };
  const { offsets: _, ...counts } = result;
  o.logger.info(
    counts,
    `retrain: ${written} transactions exported from ${Object.keys(read.offsets).join(', ')}`,
  );
  return result;
}

export interface RetrainKafkaOptions extends Omit<RetrainFilesOptions, 'inputs'> {
  /** KAFKA_BROKERS. */
  readonly brokers: readonly string[];
  /** KAFKA_TOPIC_TRANSACTIONS and KAFKA_TOPIC_LABELS. */
  readonly topics: { readonly transactions: string; readonly labels: string };
}

/**
 * `fraudscore retrain --from-kafka`: the topics exported into the work dir (`exportKafkaHistory`), then
 * `retrainFromFiles` on that file. The card's data fingerprint is the export's, with the source: topics and
 * offsets read. Throws when the topics hold no valid transaction.
 */
export async function retrainFromKafka(o: RetrainKafkaOptions): Promise<RetrainResult> {
  // Before a long export: a missing trainer would otherwise only show once the topics have been read.
  await access(o.python, constants.X_OK).catch(() => {
    throw new Error(
      `training Python not found at ${o.python}: see scripts/python-env.sh (FRAUDSCORE_PYTHON)`,
    );
  });
  const workDir = o.workDir ?? (await mkdtemp(join(tmpdir(), 'fraudscore-retrain-')));
  try {
    const t0 = performance.now();
    const exported = await exportKafkaHistory({ ...o, output: join(workDir, 'kafka-history.csv') });
    if (exported.rows === 0)
      throw new Error(`no valid transactions in ${o.topics.transactions}: nothing to retrain on`);
    const seconds = Math.round((performance.now() - t0) / 100) / 10;
    const { path: _, ...source } = exported;
    return await retrainOver({ ...o, inputs: [exported.path], workDir }, async () => ({
      ...(await fingerprintFiles([exported.path], o.until)),
      source: { kind: 'kafka', topics: o.topics, ...source, export_seconds: seconds },
    }));
  } finally {
    if (!o.keepWork && !o.workDir) await rm(workDir, { recursive: true, force: true });
  }
}

/**
 * The active version in the shared control plane, when the settings name one (Redis); else undefined. An
 * unreachable control plane fails the run: the champion would otherwise be a guess.
 */
async function activeFromControlPlane(
  name: string,
  env: Record<string, string | undefined>,
  logger: Logger,
): Promise<string | undefined> {
  const config = loadConfig(env);
  if (!config.REDIS_URL && !config.REDIS_CLUSTER_NODES) return undefined;
  const client = createRedisClient(config, { failFast: false }, logger);
  if (!client) return undefined;
  try {
    await connected(client, 5_000);
    if (client.status !== 'ready')
      throw new Error(
        'the control plane (Redis) is unreachable; name the champion with --champion <version>',
      );
    const state = await new RedisControlPlane(client, config.REDIS_KEY_PREFIX, systemClock).read(name);
    return state?.active;
  } finally {
    client.disconnect();
  }
}

/** sha256 of each input file and of their digests in order: the card's data fingerprint. */
async function fingerprintFiles(paths: readonly string[], until?: string): Promise<Record<string, unknown>> {
  const inputs = [];
  for (const path of paths) {
    const h = createHash('sha256');
    for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
    inputs.push({ path, bytes: (await stat(path)).size, sha256: h.digest('hex') });
  }
  const all = createHash('sha256');
  for (const i of inputs) all.update(`${i.sha256}\n`);
  return { algorithm: 'sha256', sha256: all.digest('hex'), inputs, ...(until ? { until } : {}) };
}

async function gitCommit(): Promise<{ commit?: string; dirty?: boolean }> {
  const run = promisify(execFile);
  try {
    const { stdout } = await run('git', ['rev-parse', 'HEAD']);
    const { stdout: status } = await run('git', ['status', '--porcelain', '--untracked-files=no']);
    return { commit: stdout.trim(), dirty: status.trim() !== '' };
  } catch {
    return {};
  }
}

/** JSON log lines on stderr, for one-shot jobs whose stdout is their result (retrain --json). */
export function stderrLogger(level: string): Logger & { flush(): void } {
  return pino({ level, base: { component: 'retrain' } }, pino.destination({ fd: 2, sync: true }));
}
