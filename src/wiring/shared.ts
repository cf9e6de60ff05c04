import { Cluster, Redis } from 'ioredis';
import { loadFeatureSets } from '../adapters/fs/feature-set-files.js';
import { FeatureWorker } from '../adapters/kafka/feature-worker.js';
import { createLogger } from '../adapters/logging/logger.js';
import { MemoryFeatureStore } from '../adapters/memory/memory-store.js';
import { RedisFeatureStore } from '../adapters/redis/redis-store.js';
import type { Config } from '../config.js';
import { type CompiledFeatureSet, type EntitySpec, entityUnion } from '../domain/features/engine.js';
import type { RetentionPolicy } from '../domain/features/records.js';
import { DAY_MS } from '../domain/features/time.js';
import type { FeatureStore } from '../ports/feature-store.js';
import type { Logger } from '../ports/logger.js';
import type { WorkerObserver } from '../ports/worker-observer.js';

export interface Deps {
  readonly logger: Logger;
  readonly featureSets: ReadonlyMap<string, CompiledFeatureSet>;
  readonly entities: readonly EntitySpec[];
  readonly retention: RetentionPolicy;
  readonly store: FeatureStore;
  readonly worker?: FeatureWorker;
  close(): Promise<void>;
}

export interface WireOptions {
  readonly needs: 'serve' | 'worker';
  readonly logger?: Logger;
  readonly workerObserver?: WorkerObserver;
  /** Replaces the store the config names (tests: a store that fails or stalls). */
  readonly store?: FeatureStore;
}

/** The one place where adapters meet ports: everything a command needs, built from the frozen config. */
export async function wire(config: Config, o: WireOptions): Promise<Deps> {
  const logger = o.logger ?? createLogger(config.LOG_LEVEL);
  const featureSets = loadFeatureSets(config.FEATURE_DIR);
  const sets = [...featureSets.values()];
  const entities = entityUnion(sets);
  const retention = {
    horizonMs: Math.max(...sets.map((s) => s.lookbackMs)) + config.FEATURE_RETENTION_GRACE_DAYS * DAY_MS,
  };
  const closers: (() => Promise<void>)[] = [];

  // The API fails fast while Redis is away (and scores degraded); the worker waits for it and loses nothing.
  const store = o.store ?? createStore(config, retention, { failFast: o.needs === 'serve' }, logger);
  closers.push(() => store.close());

  let worker: FeatureWorker | undefined;
  const wantsWorker = o.needs === 'worker' || config.WORKER_IN_PROCESS;
  if (wantsWorker && config.KAFKA_BROKERS) {
    const workerStore =
      o.needs === 'worker' ? store : createStore(config, retention, { failFast: false }, logger);
    if (workerStore !== store) closers.push(() => workerStore.close());
    worker = new FeatureWorker({
      brokers: config.KAFKA_BROKERS,
      clientId: config.KAFKA_CLIENT_ID,
      groupId: config.KAFKA_GROUP_ID,
      topics: {
        transactions: config.KAFKA_TOPIC_TRANSACTIONS,
        labels: config.KAFKA_TOPIC_LABELS,
        deadLetter: config.KAFKA_TOPIC_DEAD_LETTER,
      },
      entities,
      concurrency: config.WORKER_CONCURRENCY,
      sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
      store: workerStore,
      logger: logger.child({ component: 'worker' }),
      ...(o.workerObserver ? { observer: o.workerObserver } : {}),
    });
    const w = worker;
    closers.unshift(() => w.stop());
  }

  return {
    logger,
    featureSets,
    entities,
    retention,
    store,
    ...(worker ? { worker } : {}),
    async close() {
      for (const c of closers) await c().catch((err: unknown) => logger.warn({ err }, 'error while closing'));
    },
  };
}

function createStore(
  config: Config,
  retention: RetentionPolicy,
  o: { failFast: boolean },
  logger: Logger,
): FeatureStore {
  const options = { prefix: config.REDIS_KEY_PREFIX, retention };
  const clientOptions = {
    enableOfflineQueue: !o.failFast,
    maxRetriesPerRequest: o.failFast ? 0 : null,
    enableAutoPipelining: false,
    lazyConnect: false,
  };
  if (config.REDIS_CLUSTER_NODES) {
    const nodes = config.REDIS_CLUSTER_NODES.map((hp) => {
      const [host, port] = hp.split(':');
      return { host: host!, port: Number(port ?? 6379) };
    });
    return new RedisFeatureStore(
      watchErrors(
        new Cluster(nodes, { enableOfflineQueue: !o.failFast, redisOptions: clientOptions }),
        logger,
      ),
      options,
    );
  }
  if (config.REDIS_URL)
    return new RedisFeatureStore(watchErrors(new Redis(config.REDIS_URL, clientOptions), logger), options);
  return new MemoryFeatureStore(retention);
}

/** ioredis emits an error per failed reconnect; log the first of each outage, not every attempt. */
function watchErrors<T extends Redis | Cluster>(client: T, logger: Logger): T {
  let down = false;
  client.on('error', (err: Error) => {
    if (!down) logger.warn({ err: err.message }, 'Redis unavailable; reconnecting');
    down = true;
  });
  client.on('ready', () => {
    if (down) logger.info({}, 'Redis available again');
    down = false;
  });
  return client;
}
