import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { systemClock } from '../adapters/clock/system-clock.js';
import { FsModelRepository } from '../adapters/fs/model-repository.js';
import { KafkaDecisionSink } from '../adapters/kafka/decision-sink.js';
import { auditLogger, createLogger } from '../adapters/logging/logger.js';
import { createMetrics, type Metrics, workerObserver } from '../adapters/metrics/metrics.js';
import { OnnxModelRuntime } from '../adapters/onnx/onnx-runtime.js';
import type { Config } from '../config.js';
import { build } from '../http/app.js';
import type { Clock } from '../ports/clock.js';
import type { FeatureStore } from '../ports/feature-store.js';
import type { WorkerProgressStore } from '../ports/worker-progress.js';
import { Ingest } from '../usecases/ingest.js';
import type { LoadedVersion } from '../usecases/models/loaded-version.js';
import { ModelRegistry, type RegistryEvent } from '../usecases/models/registry.js';
import { startModelWatch } from '../usecases/models/watch.js';
import { Scorer } from '../usecases/scoring/scorer.js';
import { FeatureStaleness } from '../usecases/staleness.js';
import { buildInfo } from '../version.js';
import { createStores, loadFeatures } from './stores.js';
import { createFeatureWorker } from './worker.js';

export interface Service {
  readonly app: FastifyInstance;
  readonly logger: ReturnType<typeof createLogger>;
  readonly registry: ModelRegistry;
  readonly metrics: Metrics;
  readonly promRegistry: Registry;
  /** Stops accepting, drains in-flight requests, then closes the worker, models and store. */
  close(): Promise<void>;
}

export interface ServiceOptions {
  readonly clock?: Clock;
  readonly logger?: ReturnType<typeof createLogger>;
  readonly store?: FeatureStore;
  /** Where workers record their progress (with `store`; default: the store's own, none for a given store). */
  readonly progress?: WorkerProgressStore;
}

/** Everything `fraudscore serve` runs, built from the config; tests use it with `app.inject()`. */
export async function createService(config: Config, o: ServiceOptions = {}): Promise<Service> {
  const clock = o.clock ?? systemClock;
  const logger = o.logger ?? createLogger(config.LOG_LEVEL);
  const promRegistry = new Registry();
  const info = buildInfo();
  const metrics = createMetrics(promRegistry, info);
  let newestEvent = Number.NaN;
  const markApplied = (t: number) => {
    if (!(t <= newestEvent)) newestEvent = t;
  };
  const features = loadFeatures(config);
  const closers: (() => Promise<void>)[] = [];
  const own = o.store
    ? undefined
    : createStores(config, features.retention, { failFast: true, clock }, logger);
  const store = o.store ?? own!.features;
  // With no shared store (the embedded one fed by POST /v1/events) there is no worker to be stale.
  const progress = o.progress ?? (store.kind === 'memory' ? undefined : own?.progress);
  closers.push(() => store.close());
  let worker: ReturnType<typeof createFeatureWorker>;
  if (config.WORKER_IN_PROCESS && config.KAFKA_BROKERS) {
    // The worker must not fail fast: it holds its offsets and waits for the store instead.
    const workerStores = createStores(config, features.retention, { failFast: false, clock }, logger);
    const workerStore = workerStores.features;
    worker = createFeatureWorker(
      config,
      features,
      workerStore,
      logger,
      workerObserver(metrics, markApplied),
      {
        progress: o.progress ?? workerStores.progress,
        clock,
        inProcess: true,
      },
    );
    closers.unshift(
      () => worker!.stop(),
      () => workerStore.close(),
    );
  }
  const staleness = progress
    ? new FeatureStaleness({
        progress,
        clock,
        logger: logger.child({ component: 'staleness' }),
        maxMs: config.MAX_FEATURE_STALENESS_MS,
      })
    : undefined;
  staleness?.start();
  closers.unshift(async () => staleness?.stop());

  const registry = new ModelRegistry({
    source: new FsModelRepository({
      dir: config.MODEL_DIR,
      runtime: new OnnxModelRuntime({ intraOpNumThreads: config.ORT_INTRA_OP_THREADS }),
      featureSets: features.featureSets,
    }),
    logger: logger.child({ component: 'models' }),
    clock,
    defaultModel: config.MODEL_NAME,
    batching: {
      enabled: config.MICROBATCH_ENABLED,
      maxRows: config.MICROBATCH_MAX_ROWS,
      maxWaitMs: config.MICROBATCH_MAX_WAIT_MS,
    },
    psiWindow: config.PSI_WINDOW,
    onEvent: (e) => onModelEvent(e, metrics, logger),
    onBatch: (b) => metrics.batchSize.observe(b.rows),
  });

  const version = config.MODEL_VERSION ?? (await registry.latest(config.MODEL_NAME));
  if (version) {
    try {
      await registry.activate(config.MODEL_NAME, version);
    } catch (err) {
      logger.error(
        { err, model: config.MODEL_NAME, version },
        'could not activate the configured model; not ready',
      );
    }
  } else
    logger.error({ model: config.MODEL_NAME, dir: config.MODEL_DIR }, 'no model version found; not ready');

  const watch = startModelWatch(registry, {
    mode: config.MODEL_WATCH,
    name: config.MODEL_NAME,
    intervalMs: config.MODEL_WATCH_INTERVAL_MS,
    canaryPercent: config.MODEL_WATCH_CANARY_PERCENT,
    logger: logger.child({ component: 'model-watch' }),
  });
  const decisions =
    config.KAFKA_BROKERS && config.KAFKA_TOPIC_DECISIONS
      ? new KafkaDecisionSink(
          config.KAFKA_BROKERS,
          config.KAFKA_CLIENT_ID,
          config.KAFKA_TOPIC_DECISIONS,
          logger,
        )
      : undefined;
  const scorer = new Scorer({
    registry,
    modelName: config.MODEL_NAME,
    store,
    featureSets: features.featureSets,
    entities: features.entities,
    clock,
    logger: auditLogger(logger, { component: 'scoring' }),
    metrics,
    cacheSize: config.ANSWER_CACHE_SIZE,
    ...(decisions ? { decisions } : {}),
    ...(staleness ? { featuresStale: () => staleness.stale() } : {}),
  });
  exportGauges(promRegistry, metrics, registry, clock, () => newestEvent, staleness);

  const app = await build(config, {
    logger,
    clock,
    registry: promRegistry,
    metrics,
    scoring: scorer,
    ingest: new Ingest({ store, entities: features.entities }),
    models: registry,
    version: info.version,
    onEventApplied: markApplied,
  });
  if (worker) await worker.start();

  return {
    app,
    logger,
    registry,
    metrics,
    promRegistry,
    async close() {
      await watch.stop();
      await app.close();
      await decisions?.close();
      for (const c of closers) await c().catch((err: unknown) => logger.warn({ err }, 'error while closing'));
      await registry.close();
    },
  };
}

function onModelEvent(
  e: RegistryEvent,
  metrics: Metrics,
  logger: { info(o: object, m?: string): void; warn(o: object, m?: string): void },
) {
  if (e.type === 'load') metrics.modelLoads.inc({ outcome: 'success' });
  if (e.type === 'load_failed') metrics.modelLoads.inc({ outcome: 'failure' });
  (e.type === 'load_failed' ? logger.warn : logger.info).call(
    logger,
    { audit: 'model', ...e },
    `model ${e.type}`,
  );
}

/**
 * Gauges computed at scrape time: roles of model versions, drift of the versions serving, feature freshness
 * and staleness.
 */
function exportGauges(
  prom: Registry,
  metrics: Metrics,
  registry: ModelRegistry,
  clock: Clock,
  newestEvent: () => number,
  staleness: FeatureStaleness | undefined,
) {
  const collect = async () => {
    metrics.modelInfo.reset();
    metrics.featurePsi.reset();
    metrics.scorePsi.reset();
    for (const m of registry.serving()) {
      const roles: [LoadedVersion | undefined, string][] = [
        [m.active, 'active'],
        [m.canary, 'canary'],
        [m.shadow, 'shadow'],
      ];
      for (const [v, role] of roles) {
        if (!v) continue;
        const version = v.version;
        metrics.modelInfo.set({ name: m.name, version, role }, 1);
        const drift = v.drift.snapshot();
        if (!drift || drift.observations === 0) continue;
        metrics.scorePsi.set({ model_version: version }, drift.score);
        for (const [feature, value] of Object.entries(drift.features))
          metrics.featurePsi.set({ feature, model_version: version }, value);
      }
    }
    const t = newestEvent();
    if (Number.isFinite(t)) metrics.featureFreshness.set(Math.max(0, (clock.now() - t) / 1000));
    metrics.featureStaleness.set(staleness?.seconds() ?? 0);
    metrics.featureWorkers.set(staleness?.workers() ?? 0);
  };
  // prom-client calls collect() on the metric being scraped; one hook on the registry keeps it to one pass.
  const original = prom.metrics.bind(prom);
  prom.metrics = async () => {
    await collect();
    return original();
  };
  const originalJson = prom.getMetricsAsJSON.bind(prom);
  prom.getMetricsAsJSON = async () => {
    await collect();
    return originalJson();
  };
}
