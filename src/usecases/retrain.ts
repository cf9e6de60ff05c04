import { DAY_MS } from '../domain/features/time.js';
import type { Logger } from '../ports/logger.js';
import type { GateResult, ModelFolders, Trainer } from '../ports/trainer.js';

/** What the history held, as the backfill saw it. */
export interface HistoryStats {
  readonly rows: number;
  readonly frauds: number;
  /**
   * Frauds whose row says they were labelled after the transaction (LABELED_AT later than TX_DATETIME): applied
   * then, not with their transaction (a LABELED_AT at or before it goes with the transaction, as the backfill does).
   */
  readonly labeledAt: number;
  /** First and last event time, epoch ms. */
  readonly firstMs: number;
  readonly lastMs: number;
}

export interface Champion {
  readonly version: string;
  /** Where it came from: `option`, `control_plane` (the active version), `latest_eligible` (MODEL_DIR). */
  readonly source: 'option' | 'control_plane' | 'latest_eligible';
  /** Its feature set id, e.g. transaction_v2. */
  readonly featureSet: string;
}

export interface RetrainRequest {
  readonly name: string;
  /** Feature set of the new version (default: the champion's, else transaction_v2). */
  readonly featureSet?: string;
  readonly featureDir: string;
  /** Backfill engine (node; the SQL engines come with issue 22); passed through to the backfill. */
  readonly engine: string;
  readonly seed: number;
  /** Evaluation period: the last `testDays` days of the history; the candidate learns from rows before it minus `gapDays`. */
  readonly testDays: number;
  readonly gapDays: number;
  readonly gate: {
    readonly rules: readonly string[];
    readonly resamples: number;
    readonly seed: number;
    readonly confidence: number;
  };
  readonly trainerOptions: readonly string[];
  readonly trigger: { readonly kind: string; readonly by?: string; readonly note?: string };
  /** Scratch space for training sets (removed by the caller). */
  readonly workDir: string;
}

export interface RetrainDeps {
  readonly folders: ModelFolders;
  readonly trainer: Trainer;
  /** The history through the service's feature engine into `output` (one pass per feature set). */
  backfill(
    featureSet: string,
    engine: string,
    output: string,
    onProgress: (done: number) => void,
  ): Promise<HistoryStats>;
  /** The service's own load pipeline on the staged folder (schema, checksums, golden rows, warm-up); throws when refused. */
  verify(folder: string, name: string, version: string): Promise<void>;
  /** The version the new one must beat, or undefined for the first version. */
  champion(name: string): Promise<Champion | undefined>;
  /** sha256 of the inputs, for the card. */
  fingerprint(): Promise<Record<string, unknown>>;
  /** The code's commit, when known. */
  code(): Promise<{ commit?: string; dirty?: boolean }>;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly now: () => number;
  /** Progress of a long step (the backfill), for a progress bar. */
  readonly onProgress?: (step: string, done: number) => void;
}

export interface RetrainResult {
  readonly name: string;
  readonly version: string;
  readonly folder: string;
  readonly verdict: GateResult['verdict'];
  readonly gate: GateResult;
  readonly champion?: Champion;
  readonly timingsSeconds: Record<string, number>;
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const midnight = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;

/**
 * `fraudscore retrain`: the history through the service's own feature engine (the backfill), the Python trainer
 * on everything before the evaluation period, the gate (candidate vs champion on that period, paired bootstrap,
 * model card), then the version published as MODEL_DIR/<name>/<N+1> by one rename of a staging folder written
 * manifest last. Any failure removes the staging folder: no half version is ever visible. A rejected version is
 * published too (for inspection); the fleet refuses to serve it without an audited override.
 */
export async function retrain(r: RetrainRequest, d: RetrainDeps): Promise<RetrainResult> {
  const { logger } = d;
  const timings: Record<string, number> = {};
  const step = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = d.now();
    logger.info({ step: label }, `retrain: ${label}…`);
    const out = await fn();
    timings[label] = Math.round((d.now() - t0) / 100) / 10;
    logger.info({ step: label, seconds: timings[label] }, `retrain: ${label} done in ${timings[label]}s`);
    return out;
  };

  const champion = await step('champion', () => d.champion(r.name));
  const featureSet = r.featureSet ?? champion?.featureSet ?? 'transaction_v2';
  const version = await d.folders.nextVersion(r.name);
  logger.info(
    { model: r.name, version, champion, featureSet },
    champion
      ? `retrain: ${r.name} v${version} against champion v${champion.version} (${champion.source})`
      : `retrain: ${r.name} v${version}, no champion (first version)`,
  );

  const features = `${r.workDir}/features-${featureSet}.csv`;
  const history = await step('backfill', () =>
    d.backfill(featureSet, r.engine, features, (n) => d.onProgress?.('backfill', n)),
  );
  let championFeatures = features;
  if (champion && champion.featureSet !== featureSet) {
    championFeatures = `${r.workDir}/features-${champion.featureSet}.csv`;
    await step('backfill_champion', () =>
      d.backfill(champion.featureSet, r.engine, championFeatures, (n) =>
        d.onProgress?.('backfill_champion', n),
      ),
    );
  }
  const lastDay = midnight(history.lastMs);
  const testFrom = lastDay - (r.testDays - 1) * DAY_MS;
  const trainUntil = testFrom - r.gapDays * DAY_MS;
  if (trainUntil <= midnight(history.firstMs))
    throw new Error(
      `history ${day(history.firstMs)}..${day(history.lastMs)} is too short for a ${r.testDays}-day evaluation period`,
    );

  const [fingerprint, code] = await step('fingerprint', () => Promise.all([d.fingerprint(), d.code()]));
  const staged = await d.folders.stage(r.name, version);
  try {
    await step('train', () =>
      d.trainer.train(
        {
          features,
          folder: staged,
          name: r.name,
          version,
          featureSet,
          featureDir: r.featureDir,
          trainUntil: day(trainUntil),
          seed: r.seed,
          options: r.trainerOptions,
        },
        (line) => logger.info({ step: 'train' }, line),
      ),
    );
    const gate = await step('gate', () =>
      d.trainer.gate(
        {
          features,
          candidate: staged,
          ...(champion
            ? {
                champion: { folder: d.folders.folder(r.name, champion.version), features: championFeatures },
              }
            : {}),
          testFrom: day(testFrom),
          testDays: r.testDays,
          ...r.gate,
          workDir: r.workDir,
          context: {
            trigger: r.trigger,
            code,
            data: {
              fingerprint,
              history_from: day(history.firstMs),
              history_to: day(history.lastMs),
              rows: history.rows,
              frauds: history.frauds,
              engine: r.engine,
              labels:
                history.labeledAt > 0
                  ? `${history.labeledAt} of ${history.frauds} fraud labels applied at their labeled_at, the rest with their transaction; the feature set delays decide when they are visible`
                  : 'applied with their transaction (the events carry no labeled_at); the feature set delays decide when they are visible',
            },
            champion_source: champion?.source ?? null,
            trainer_options: r.trainerOptions,
            timings_seconds: { ...timings },
          },
        },
        (line) => logger.info({ step: 'gate' }, line),
      ),
    );
    await step('verify', () => d.verify(staged, r.name, version));
    const folder = await step('publish', () => d.folders.publish(staged, r.name, version));
    logger.info(
      { model: r.name, version, verdict: gate.verdict, reasons: gate.reasons, folder },
      `retrain: ${r.name} v${version} is ${gate.verdict}`,
    );
    return {
      name: r.name,
      version,
      folder,
      verdict: gate.verdict,
      gate,
      ...(champion ? { champion } : {}),
      timingsSeconds: timings,
    };
  } catch (err) {
    await d.folders.discard(staged).catch(() => undefined);
    throw err;
  }
}
