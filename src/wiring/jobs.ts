import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { systemClock } from '../adapters/clock/system-clock.js';
import { CsvWriter } from '../adapters/fs/csv-writer.js';
import { loadFeatureSets } from '../adapters/fs/feature-set-files.js';
import { fileRows } from '../adapters/fs/handbook-csv.js';
import { FsModelRepository } from '../adapters/fs/model-repository.js';
import { ensureTopics } from '../adapters/kafka/topics.js';
import { MemoryFeatureStore } from '../adapters/memory/memory-store.js';
import { OnnxModelRuntime } from '../adapters/onnx/onnx-runtime.js';
import { runTrainingModule } from '../adapters/python/training-module.js';
import type { CompiledFeatureSet } from '../domain/features/engine.js';
import { DAY_MS } from '../domain/features/time.js';
import type { RowSource } from '../ports/row-source.js';
import { backfill } from '../usecases/backfill.js';
import { ModelRegistry } from '../usecases/models/registry.js';
import { replay } from '../usecases/replay.js';

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
