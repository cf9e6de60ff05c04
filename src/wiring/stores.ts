import { Cluster, Redis } from 'ioredis';
import { systemClock } from '../adapters/clock/system-clock.js';
import { loadFeatureSets } from '../adapters/fs/feature-set-files.js';
import { MemoryProgressStore } from '../adapters/memory/memory-progress.js';
import { MemoryFeatureStore } from '../adapters/memory/memory-store.js';
import { RedisProgressStore } from '../adapters/redis/redis-progress.js';
import { RedisFeatureStore } from '../adapters/redis/redis-store.js';
import type { Config } from '../config.js';
import { type CompiledFeatureSet, type EntitySpec, entityUnion } from '../domain/features/engine.js';
import type { RetentionPolicy } from '../domain/features/records.js';
import { DAY_MS } from '../domain/features/time.js';
import type { Clock } from '../ports/clock.js';
import type { FeatureStore } from '../ports/feature-store.js';
import type { Logger } from '../ports/logger.js';
import type { WorkerProgressStore } from '../ports/worker-progress.js';

export interface Features {
  readonly featureSets: ReadonlyMap<string, CompiledFeatureSet>;
  /** Every entity any set reads: each event is written once per entity of the union. */
  readonly entities: readonly EntitySpec[];
  readonly retention: RetentionPolicy;
}

/** The feature definitions in FEATURE_DIR, and the retention that covers the longest lookback plus the grace. */
export function loadFeatures(config: Config): Features {
  const featureSets = loadFeatureSets(config.FEATURE_DIR);
  const sets = [...featureSets.values()];
  return {
    featureSets,
    entities: entityUnion(sets),
    retention: {
      horizonMs: Math.max(...sets.map((s) => s.lookbackMs)) + config.FEATURE_RETENTION_GRACE_DAYS * DAY_MS,
    },
  };
}

/**
 * Redis Cluster, Redis or the in-memory store, as the config says, and, on the same client, where workers
 * record their progress (`<prefix>:workers`; the in-memory one is this process's own). `failFast`: the API
 * fails fast while Redis is away (and scores degraded); the worker waits for it and loses nothing.
 */
export function createStores(
  config: Config,
  retention: RetentionPolicy,
  o: { failFast: boolean; clock?: Clock },
  logger: Logger,
): { features: FeatureStore; progress: WorkerProgressStore } {
  const clock = o.clock ?? systemClock;
  const options = { prefix: config.REDIS_KEY_PREFIX, retention };
  const clientOptions = {
    enableOfflineQueue: !o.failFast,
    maxRetriesPerRequest: o.failFast ? 0 : null,
    enableAutoPipelining: false,
    lazyConnect: false,
  };
  let client: Redis | Cluster | undefined;
  if (config.REDIS_CLUSTER_NODES) {
    const nodes = config.REDIS_CLUSTER_NODES.map((hp) => {
      const [host, port] = hp.split(':');
      return { host: host!, port: Number(port ?? 6379) };
    });
    client = watchErrors(
      new Cluster(nodes, { enableOfflineQueue: !o.failFast, redisOptions: clientOptions }),
      logger,
    );
  } else if (config.REDIS_URL) client = watchErrors(new Redis(config.REDIS_URL, clientOptions), logger);
  if (!client)
    return { features: new MemoryFeatureStore(retention), progress: new MemoryProgressStore(clock) };
  return {
    features: new RedisFeatureStore(client, options),
    progress: new RedisProgressStore(client, { prefix: config.REDIS_KEY_PREFIX, clock }),
  };
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
