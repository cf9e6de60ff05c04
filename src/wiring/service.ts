import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { systemClock } from '../adapters/clock/system-clock.js';
import { FsModelRepository } from '../adapters/fs/model-repository.js';
import { KafkaDecisionSink } from '../adapters/kafka/decision-sink.js';
import { createLogger, decisionAuditLogger, scoringLogger } from '../adapters/logging/logger.js';
import { MemoryControlPlane } from '../adapters/memory/memory-control-plane.js';
import { createMetrics, labelObserver, type Metrics, workerObserver } from '../adapters/metrics/metrics.js';
import { OnnxModelRuntime } from '../adapters/onnx/onnx-runtime.js';
import { RedisAnswerStore } from '../adapters/redis/redis-answer-store.js';
import { RedisControlPlane } from '../adapters/redis/redis-control-plane.js';
import { TurnPipeline } from '../adapters/redis/turn-pipeline.js';
import type { Config } from '../config.js';
import { DAY_MS } from '../domain/features/time.js';
import { build } from '../http/app.js';
import type { AnswerStore } from '../ports/answer-store.js';
import type { Clock } from '../ports/clock.js';
import type { ControlPlane } from '../ports/control-plane.js';
import type { DecisionLog } from '../ports/decision-log.js';
import type { FeatureStore } from '../ports/feature-store.js';
import type { WorkerProgressStore } from '../ports/worker-progress.js';
import { Ingest, type IngestDeps } from '../usecases/ingest.js';
import { ModelFleet } from '../usecases/models/fleet.js';
import type { LoadedVersion } from '../usecases/models/loaded-version.js';
import { PromotionController } from '../usecases/models/promotion.js';
import { ModelRegistry, type RegistryEvent } from '../usecases/models/registry.js';
import { startModelWatch } from '../usecases/models/watch.js';
import { Performance, type PerformanceReport } from '../usecases/performance.js';
import { DecisionRecorder } from '../usecases/scoring/decision-recorder.js';
import { Scorer } from '../usecases/scoring/scorer.js';
import { SharedAnswers } from '../usecases/scoring/shared-answers.js';
import { FeatureStaleness } from '../usecases/staleness.js';
import { buildInfo } from '../version.js';
import {
  connected,
  createDecisionLog,
  createProgressStore,
  createRedisClient,
  createStore,
  loadFeatures,
} from './stores.js';
import { startTracing, type Tracing } from './tracing.js';
import { createFeatureWorker } from './worker.js';

export interface Service {
  readonly app: FastifyInstance;
  readonly logger: ReturnType<typeof createLogger>;
  readonly registry: ModelRegistry;
  readonly fleet: ModelFleet;
  readonly metrics: Metrics;
  readonly promRegistry: Registry;
  /** Live model performance from the decision log (undefined when DECISION_LOG is off). */
  readonly performance?: Performance;
  /** The promotion policy, when PROMOTION_POLICY is on (tests tick it). */
  readonly promotion?: PromotionController;
  /** Writes the decisions queued for the decision log (tests: before labels that must find them). */
  flushDecisions(): Promise<void>;
  /** OpenTelemetry tracing: `tracer` is undefined when it is off (OTEL_TRACES_EXPORTER unset). */
  readonly tracing: Tracing;
  /** Stops accepting, drains in-flight requests, then closes the worker, models and store, and flushes spans. */
  close(): Promise<void>;
}

export interface ServiceOptions {
  readonly clock?: Clock;
  readonly logger?: ReturnType<typeof createLogger>;
  readonly store?: FeatureStore;
  /** Replace the control plane and the shared answer store the config implies (tests: replicas in one process). */
  readonly control?: ControlPlane;
  readonly answers?: AnswerStore;
  /** Where workers record their progress (default: the shared store's; none for an embedded store). */
  readonly progress?: WorkerProgressStore;
  /** Replace the decision log the config implies (tests: replicas sharing one embedded log). */
  readonly decisionLog?: DecisionLog;
  /** Replace the tracing the config implies (tests: the SDK with an in-memory exporter); the caller shuts it down. */
  readonly tracing?: Tracing;
}

/** Everything `fraudscore serve` runs, built from the config; tests use it with `app.inject()`. */
export async function createService(config: Config, o: ServiceOptions = {}): Promise<Service> {
  const clock = o.clock ?? systemClock;
  const logger = o.logger ?? createLogger(config.LOG_LEVEL);
  const promRegistry = new Registry();
  const info = buildInfo();
  const metrics = createMetrics(promRegistry, info);
  const replica = config.REPLICA_ID ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const tracing =
    o.tracing ??
    (await startTracing(config, {
      service: { version: info.version, instanceId: replica },
      logger: logger.child({ component: 'tracing' }),
    }));
  const tracer = tracing.tracer;
  let newestEvent = Number.NaN;
  const markApplied = (t: number) => {
    if (!(t <= newestEvent)) newestEvent = t;
  };
  const features = loadFeatures(config);
  const closers: (() => Promise<void>)[] = [];
  // One client for the API's feature reads, the control plane and the shared answers.
  const redis = o.store && o.control ? undefined : createRedisClient(config, { failFast: true }, logger);
  // The commands of one event-loop turn (feature reads, answer claims, answers, decisions) share one pipeline.
  const pipeline = redis && new TurnPipeline(redis);
  const store = o.store ?? createStore(config, features.retention, redis, clock, pipeline);
  const control =
    o.control ??
    (redis ? new RedisControlPlane(redis, config.REDIS_KEY_PREFIX, clock) : new MemoryControlPlane(clock));
  const answers =
    o.answers ?? (redis ? new RedisAnswerStore(redis, config.REDIS_KEY_PREFIX, pipeline) : undefined);
  // With no shared store (the embedded one fed by POST /v1/events) there is no worker to be stale.
  const progress = o.progress ?? (redis ? createProgressStore(config, redis, clock) : undefined);
  const decisionLog = config.DECISION_LOG
    ? (o.decisionLog ?? createDecisionLog(config, redis, clock, pipeline))
    : undefined;
  const outcomes: IngestDeps['outcomes'] = decisionLog && {
    log: decisionLog,
    models: [config.MODEL_NAME],
    onLabel: labelObserver(metrics),
  };
  // An injected control plane is the caller's to close.
  if (!o.control) closers.push(() => control.close());
  closers.push(() => store.close());
  if (o.store && redis) closers.push(async () => void redis.disconnect());
  let worker: ReturnType<typeof createFeatureWorker>;
  if (config.WORKER_IN_PROCESS && config.KAFKA_BROKERS) {
    // The worker must not fail fast: it holds its offsets and waits for the store instead.
    const workerClient = createRedisClient(config, { failFast: false }, logger);
    const workerStore = createStore(config, features.retention, workerClient, clock);
    worker = createFeatureWorker(
      config,
      features,
      workerStore,
      logger,
      workerObserver(metrics, markApplied),
      {
        progress: o.progress ?? createProgressStore(config, workerClient, clock),
        clock,
        inProcess: true,
        ...(tracer ? { tracer } : {}),
        ...(outcomes
          ? {
              outcomes: {
                ...outcomes,
                // The worker waits for Redis rather than failing fast: its own client, the same keys.
                log:
                  workerClient && !o.decisionLog
                    ? createDecisionLog(config, workerClient, clock)
                    : outcomes.log,
              },
            }
          : {}),
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
    ...(tracer ? { tracer } : {}),
  });

  const fleet = new ModelFleet({
    registry,
    control,
    models: [config.MODEL_NAME],
    replica,
    clock,
    logger: logger.child({ component: 'fleet' }),
    // MODEL_VERSION is only the first desired state, written when the control plane has none yet.
    initialVersion: async (model) =>
      model === config.MODEL_NAME && config.MODEL_VERSION
        ? config.MODEL_VERSION
        : registry.latestPromotable(model, config.REQUIRE_MODEL_CARD),
    requireCard: config.REQUIRE_MODEL_CARD,
    pollMs: config.CONTROL_POLL_MS,
    heartbeatMs: config.CONTROL_HEARTBEAT_MS,
    onGenerations: (model, g) => {
      metrics.controlGeneration.set({ model, role: 'desired' }, g.desired);
      metrics.controlGeneration.set({ model, role: 'applied' }, g.applied);
    },
  });
  if (redis) await connected(redis, 5_000);
  await fleet.start();
  if (!registry.active(config.MODEL_NAME))
    logger.error({ model: config.MODEL_NAME, dir: config.MODEL_DIR }, 'no model version serves; not ready');

  const watch = startModelWatch(watchTarget(registry, fleet), {
    mode: config.MODEL_WATCH,
    name: config.MODEL_NAME,
    intervalMs: config.MODEL_WATCH_INTERVAL_MS,
    canaryPercent: config.MODEL_WATCH_CANARY_PERCENT,
    logger: logger.child({ component: 'model-watch' }),
  });
  const decisions =
    config.KAFKA_BROKERS && config.KAFKA_TOPIC_DECISIONS
      ? new KafkaDecisionSink({
          brokers: config.KAFKA_BROKERS,
          clientId: config.KAFKA_CLIENT_ID,
          topic: config.KAFKA_TOPIC_DECISIONS,
          logger,
          onDropped: (n) => metrics.decisionsDropped.inc(n),
          ...(tracer ? { tracer } : {}),
        })
      : undefined;
  const recorder =
    decisionLog &&
    new DecisionRecorder({
      log: decisionLog,
      model: config.MODEL_NAME,
      logger: logger.child({ component: 'decision-log' }),
      maxQueue: config.DECISION_LOG_QUEUE,
      onDropped: (n, reason) => metrics.decisionLogDropped.inc({ reason }, n),
    });
  const performance =
    decisionLog &&
    new Performance({
      log: decisionLog,
      clock,
      serving: (model) => {
        const m = registry.serving().find((x) => x.name === model);
        return {
          ...(m?.active ? { active: m.active.version } : {}),
          ...(m?.canary ? { canary: m.canary.version } : {}),
          ...(m?.shadow ? { shadow: m.shadow.version } : {}),
        };
      },
      maturityMs: config.LABEL_MATURITY_DAYS * DAY_MS,
      minFrauds: config.PERFORMANCE_MIN_FRAUDS,
    });
  const shared =
    answers &&
    new SharedAnswers({
      store: answers,
      ttlMs: config.ANSWER_TTL_SECONDS * 1000,
      // A claim outlives any request that could still be answering it.
      pendingTtlMs: Math.max(5_000, config.REQUEST_DEADLINE_MS * 10),
      clock,
      logger,
    });
  const scorer = new Scorer({
    registry,
    modelName: config.MODEL_NAME,
    store,
    featureSets: features.featureSets,
    entities: features.entities,
    clock,
    logger: scoringLogger(logger, { component: 'scoring' }),
    auditLog: decisionAuditLogger(logger, { component: 'scoring' }),
    metrics,
    cacheSize: config.ANSWER_CACHE_SIZE,
    ...(shared ? { shared } : {}),
    ...(decisions ? { decisions } : {}),
    ...(staleness ? { featuresStale: () => staleness.stale() } : {}),
    ...(tracer ? { tracer } : {}),
    ...(recorder ? { recorder } : {}),
  });
  metrics.precisionFloor.set({ at: 'decline' }, config.PRECISION_AT_DECLINE_FLOOR);
  metrics.precisionFloorMinOutcomes.set(config.PRECISION_FLOOR_MIN_OUTCOMES);
  const performanceGauges =
    performance &&
    cachedReport(performance, config.MODEL_NAME, clock, logger, config.PERFORMANCE_REFRESH_SECONDS * 1000);
  exportGauges(promRegistry, metrics, registry, clock, () => newestEvent, staleness, performanceGauges);
  closers.unshift(async () => recorder?.flush());
  // Answers still waiting to be kept go out before the store closes.
  closers.unshift(async () => shared?.flush());

  const app = await build(config, {
    logger,
    clock,
    registry: promRegistry,
    metrics,
    scoring: scorer,
    ingest: new Ingest({
      store,
      entities: features.entities,
      limit: { clock, maxFutureMs: config.MAX_EVENT_FUTURE_MS },
      ...(outcomes ? { outcomes } : {}),
    }),
    models: registry,
    fleet,
    ...(performance ? { performance } : {}),
    version: info.version,
    onEventApplied: markApplied,
    ...(tracer ? { tracer } : {}),
  });
  if (worker) await worker.start();
  const promotion =
    config.PROMOTION_POLICY && performance
      ? new PromotionController({
          fleet,
          control,
          registry,
          performance,
          models: [config.MODEL_NAME],
          policy: {
            canarySteps: config.PROMOTION_CANARY_STEPS,
            minFrauds: config.PROMOTION_MIN_FRAUDS,
            maxAucLoss: config.PROMOTION_MAX_AUC_LOSS,
            maxScorePsi: config.PROMOTION_MAX_SCORE_PSI,
            maxErrorRate: config.PROMOTION_MAX_ERROR_RATE,
            minErrorRows: 100,
          },
          minPsiObservations: config.PROMOTION_MIN_PSI_OBSERVATIONS,
          replica,
          clock,
          logger: logger.child({ component: 'promotion' }),
          onTransition: (model, t) => metrics.promotionTransitions.inc({ model, to: t.to }),
        })
      : undefined;
  promotion?.start(config.PROMOTION_INTERVAL_MS);

  return {
    app,
    logger,
    registry,
    fleet,
    metrics,
    promRegistry,
    ...(performance ? { performance } : {}),
    ...(promotion ? { promotion } : {}),
    flushDecisions: async () => {
      await scorer.shadowsSettled();
      await recorder?.flush();
    },
    tracing,
    async close() {
      await promotion?.stop();
      await watch.stop();
      await fleet.stop();
      await app.close();
      await decisions?.close();
      for (const c of closers) await c().catch((err: unknown) => logger.warn({ err }, 'error while closing'));
      await registry.close();
      // Injected tracing is the caller's to shut down.
      if (!o.tracing)
        await tracing.shutdown().catch((err: unknown) => logger.warn({ err }, 'error while flushing spans'));
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
  performance?: () => Promise<PerformanceReport | undefined>,
) {
  const collect = async () => {
    const report = await performance?.();
    if (report) setPerformanceGauges(metrics, report);
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

/**
 * The performance report behind the gauges: at most one read of the decision log per `refreshMs`
 * (PERFORMANCE_REFRESH_SECONDS), however often /metrics is scraped — a report reads every decision day's
 * counters; a failed read keeps the last report (and is logged).
 */
function cachedReport(
  performance: Performance,
  model: string,
  clock: Clock,
  logger: Service['logger'],
  refreshMs: number,
) {
  let last: { at: number; report: PerformanceReport } | undefined;
  let pending: Promise<PerformanceReport | undefined> | undefined;
  return async (): Promise<PerformanceReport | undefined> => {
    if (last && clock.monotonic() - last.at < refreshMs) return last.report;
    pending ??= performance
      .report(model)
      .then(
        (report) => {
          last = { at: clock.monotonic(), report };
          return report;
        },
        (err: unknown) => {
          logger.warn({ err }, 'decision log unavailable for the performance gauges');
          return last?.report;
        },
      )
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
}

function setPerformanceGauges(metrics: Metrics, report: PerformanceReport): void {
  for (const g of [
    metrics.modelAuc,
    metrics.modelAveragePrecision,
    metrics.modelPrecision,
    metrics.modelRecall,
    metrics.modelOutcomes,
  ])
    g.reset();
  for (const v of report.versions) {
    const labels = { model_version: v.version, role: v.role };
    if (v.auc !== null) metrics.modelAuc.set(labels, v.auc);
    if (v.average_precision !== null) metrics.modelAveragePrecision.set(labels, v.average_precision);
    if (v.precision_at_review !== null)
      metrics.modelPrecision.set({ ...labels, at: 'review' }, v.precision_at_review);
    if (v.precision_at_decline !== null)
      metrics.modelPrecision.set({ ...labels, at: 'decline' }, v.precision_at_decline);
    if (v.recall_at_review !== null) metrics.modelRecall.set({ ...labels, at: 'review' }, v.recall_at_review);
    if (v.recall_at_decline !== null)
      metrics.modelRecall.set({ ...labels, at: 'decline' }, v.recall_at_decline);
    for (const [decision, n] of Object.entries(v.outcomes_by_decision)) {
      metrics.modelOutcomes.set({ ...labels, decision, label: 'fraud' }, n.fraud);
      metrics.modelOutcomes.set({ ...labels, decision, label: 'not_fraud' }, n.not_fraud);
    }
  }
}

/** The model watch changes roles through the fleet, so a version it picks up reaches every replica. */
function watchTarget(registry: ModelRegistry, fleet: ModelFleet) {
  return {
    latest: (name: string) => registry.latest(name),
    active: (name: string) => registry.active(name),
    load: (name: string, version: string) => registry.load(name, version),
    unload: (name: string, version: string) => registry.unload(name, version),
    activate: (name: string, version: string) => fleet.activate(name, version),
    setCanary: (name: string, canary: { version: string; percent: number }) => fleet.setCanary(name, canary),
  };
}
