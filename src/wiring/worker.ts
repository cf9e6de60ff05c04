import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import { systemClock } from '../adapters/clock/system-clock.js';
import { FeatureWorker } from '../adapters/kafka/feature-worker.js';
import { createLogger } from '../adapters/logging/logger.js';
import { createMetrics, labelObserver, workerObserver } from '../adapters/metrics/metrics.js';
import { startMetricsServer } from '../adapters/metrics/metrics-server.js';
import { type Config, ConfigError } from '../config.js';
import type { Clock } from '../ports/clock.js';
import type { FeatureStore } from '../ports/feature-store.js';
import type { Logger } from '../ports/logger.js';
import type { Tracer } from '../ports/tracer.js';
import type { WorkerObserver } from '../ports/worker-observer.js';
import type { WorkerProgressStore } from '../ports/worker-progress.js';
import { Ingest, type IngestDeps } from '../usecases/ingest.js';
import { buildInfo } from '../version.js';
import {
  createDecisionLog,
  createProgressStore,
  createRedisClient,
  createStore,
  type Features,
  loadFeatures,
} from './stores.js';
import { startTracing } from './tracing.js';

export interface WorkerExtras {
  /** Where the worker records its progress for the API's staleness. */
  readonly progress?: WorkerProgressStore;
  /** The processing clock events are judged by (MAX_EVENT_FUTURE_MS), and progress is stamped with. */
  readonly clock?: Clock;
  /** Inside `serve`: smaller fetches and chunks, so that scoring gets the event loop often. */
  readonly inProcess?: boolean;
  /** Given when tracing is on: continues the traces messages carry. */
  readonly tracer?: Tracer;
  /** The label join (DECISION_LOG): labels joined with the decisions on record. */
  readonly outcomes?: IngestDeps['outcomes'];
}

/** The Kafka feature worker over `store`, or undefined when KAFKA_BROKERS is not set. */
export function createFeatureWorker(
  config: Config,
  features: Features,
  store: FeatureStore,
  logger: Logger,
  observer?: WorkerObserver,
  extras: WorkerExtras = {},
): FeatureWorker | undefined {
  if (!config.KAFKA_BROKERS) return undefined;
  const clock = extras.clock ?? systemClock;
  return new FeatureWorker({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID,
    groupId: config.KAFKA_GROUP_ID,
    topics: {
      transactions: config.KAFKA_TOPIC_TRANSACTIONS,
      labels: config.KAFKA_TOPIC_LABELS,
      deadLetter: config.KAFKA_TOPIC_DEAD_LETTER,
    },
    ingest: new Ingest({
      store,
      entities: features.entities,
      limit: { clock, maxFutureMs: config.MAX_EVENT_FUTURE_MS },
      ...(extras.outcomes ? { outcomes: extras.outcomes } : {}),
    }),
    concurrency: config.WORKER_CONCURRENCY,
    sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
    logger: logger.child({ component: 'worker' }),
    ...(observer ? { observer } : {}),
    ...(extras.progress ? { progress: extras.progress } : {}),
    clock,
    ...(extras.inProcess ? IN_PROCESS : {}),
    ...(extras.tracer ? { tracer: extras.tracer } : {}),
  });
}

/**
 * The worker inside `serve` shares the event loop with scoring. kafkajs decodes a fetch in one go, so a fetch
 * hands over at most 64 KiB per partition and 128 KiB in all; chunks are 250 messages, decoded 100 at a time,
 * and the worker yields every 5 ms, one slice per event-loop turn across its partitions. Catching up 40,000
 * events beside scoring on 2 cores: event-loop delay max ≈ 30 ms instead of ≈ 200 ms, at ≈ 15,000 events/s
 * instead of ≈ 40,000.
 */
const IN_PROCESS = {
  maxBytesPerPartition: 64 * 1024,
  maxBytesPerFetch: 128 * 1024,
  chunkSize: 250,
  sliceSize: 100,
  sliceMs: 5,
} as const;

/**
 * `fraudscore worker`: the feature worker with its own metrics (served on METRICS_PORT when set). Resolves
 * once it consumes; `close` finishes the batch in hand, commits, and closes the store.
 */
export async function startWorkerProcess(
  config: Config,
): Promise<{ logger: Logger; close(): Promise<void> }> {
  if (!config.KAFKA_BROKERS || !(config.REDIS_URL || config.REDIS_CLUSTER_NODES))
    throw new ConfigError('fraudscore worker needs KAFKA_BROKERS and REDIS_URL or REDIS_CLUSTER_NODES');
  const logger = createLogger(config.LOG_LEVEL);
  const registry = new Registry();
  const info = buildInfo();
  const metrics = createMetrics(registry, info);
  const tracing = await startTracing(config, {
    service: { version: info.version, instanceId: config.REPLICA_ID ?? `${hostname()}-${process.pid}` },
    logger: logger.child({ component: 'tracing' }),
  });
  const features = loadFeatures(config);
  const client = createRedisClient(config, { failFast: false }, logger);
  const store = createStore(config, features.retention, client, systemClock);
  const progress = createProgressStore(config, client, systemClock);
  const observer = workerObserver(metrics, (t) =>
    metrics.featureFreshness.set(Math.max(0, (systemClock.now() - t) / 1000)),
  );
  const worker = createFeatureWorker(config, features, store, logger, observer, {
    progress,
    clock: systemClock,
    ...(config.DECISION_LOG
      ? {
          outcomes: {
            log: createDecisionLog(config, client, systemClock),
            models: [config.MODEL_NAME],
            onLabel: labelObserver(metrics),
          },
        }
      : {}),
    ...(tracing.tracer ? { tracer: tracing.tracer } : {}),
  })!;
  const server = config.METRICS_PORT
    ? await startMetricsServer(registry, config.HOST, config.METRICS_PORT)
    : undefined;
  await worker.start();
  return {
    logger,
    async close() {
      await worker.stop().catch((err: unknown) => logger.warn({ err }, 'error while stopping the worker'));
      await store.close().catch((err: unknown) => logger.warn({ err }, 'error while closing the store'));
      server?.close();
      await tracing.shutdown().catch((err: unknown) => logger.warn({ err }, 'error while flushing spans'));
    },
  };
}
