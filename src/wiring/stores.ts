import { Cluster, Redis } from 'ioredis';
import { loadFeatureSets } from '../adapters/fs/feature-set-files.js';
import { MemoryFeatureStore } from '../adapters/memory/memory-store.js';
import { RedisFeatureStore } from '../adapters/redis/redis-store.js';
import type { Config } from '../config.js';
import { type CompiledFeatureSet, type EntitySpec, entityUnion } from '../domain/features/engine.js';
import type { RetentionPolicy } from '../domain/features/records.js';
import { DAY_MS } from '../domain/features/time.js';
import type { Clock } from '../ports/clock.js';
import type { FeatureStore } from '../ports/feature-store.js';
import type { Logger } from '../ports/logger.js';

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
 * Redis Cluster, Redis or the in-memory store, as the config says. `failFast`: the API fails fast while Redis
 * is away (and scores degraded); the worker waits for it and loses nothing. Every store refuses events dated
 * more than MAX_EVENT_FUTURE_MS after `clock.now()`.
 */
export function createStore(
  config: Config,
  retention: RetentionPolicy,
  o: { failFast: boolean; clock: Clock },
  logger: Logger,
): FeatureStore {
  const limit = { clock: o.clock, maxFutureMs: config.MAX_EVENT_FUTURE_MS };
  const options = { prefix: config.REDIS_KEY_PREFIX, retention, limit };
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
  return new MemoryFeatureStore(retention, limit);
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
