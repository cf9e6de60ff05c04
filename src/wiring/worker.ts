import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import { systemClock } from '../adapters/clock/system-clock.js';
import { FeatureWorker } from '../adapters/kafka/feature-worker.js';
import { createLogger } from '../adapters/logging/logger.js';
import { createMetrics, workerObserver } from '../adapters/metrics/metrics.js';
import { startMetricsServer } from '../adapters/metrics/metrics-server.js';
import { type Config, ConfigError } from '../config.js';
import type { Clock } from '../ports/clock.js';
import type { FeatureStore } from '../ports/feature-store.js';
import type { Logger } from '../ports/logger.js';
import type { Tracer } from '../ports/tracer.js';
import type { WorkerObserver } from '../ports/worker-observer.js';
import { Ingest } from '../usecases/ingest.js';
import { buildInfo } from '../version.js';
import { createRedisClient, createStore, type Features, loadFeatures } from './stores.js';
import { startTracing } from './tracing.js';

/**
 * The Kafka feature worker over `store`, or undefined when KAFKA_BROKERS is not set. `clock` is the processing
 * clock events are judged by (MAX_EVENT_FUTURE_MS); `tracer`, given when tracing is on, continues the traces
 * messages carry.
 */
export function createFeatureWorker(
  config: Config,
  features: Features,
  store: FeatureStore,
  logger: Logger,
  observer?: WorkerObserver,
  clock: Clock = systemClock,
  tracer?: Tracer,
): FeatureWorker | undefined {
  if (!config.KAFKA_BROKERS) return undefined;
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
    }),
    concurrency: config.WORKER_CONCURRENCY,
    sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
    logger: logger.child({ component: 'worker' }),
    ...(observer ? { observer } : {}),
    ...(tracer ? { tracer } : {}),
  });
}

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
  const store = createStore(
    config,
    features.retention,
    createRedisClient(config, { failFast: false }, logger),
    systemClock,
  );
  const observer = workerObserver(metrics, (t) =>
    metrics.featureFreshness.set(Math.max(0, (systemClock.now() - t) / 1000)),
  );
  const worker = createFeatureWorker(config, features, store, logger, observer, systemClock, tracing.tracer)!;
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
