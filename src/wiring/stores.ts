import { Cluster, Redis } from 'ioredis';
import { loadFeatureSets } from '../adapters/fs/feature-set-files.js';
import { MemoryDecisionLog } from '../adapters/memory/memory-decision-log.js';
import { MemoryProgressStore } from '../adapters/memory/memory-progress.js';
import { MemoryFeatureStore } from '../adapters/memory/memory-store.js';
import { RedisDecisionLog } from '../adapters/redis/redis-decision-log.js';
import { RedisProgressStore } from '../adapters/redis/redis-progress.js';
import { RedisFeatureStore } from '../adapters/redis/redis-store.js';
import type { TurnPipeline } from '../adapters/redis/turn-pipeline.js';
import type { Config } from '../config.js';
import { type CompiledFeatureSet, type EntitySpec, entityUnion } from '../domain/features/engine.js';
import type { RetentionPolicy } from '../domain/features/records.js';
import { DAY_MS } from '../domain/features/time.js';
import type { Clock } from '../ports/clock.js';
import type { DecisionLog } from '../ports/decision-log.js';
import type { FeatureStore } from '../ports/feature-store.js';
import type { Logger } from '../ports/logger.js';
import type { WorkerProgressStore } from '../ports/worker-progress.js';

export interface Features {
  readonly featureSets: ReadonlyMap<string, CompiledFeatureSet>;
  /** Every entity any set reads: each event is written once per entity of the union. */
  readonly entities: readonly EntitySpec[];
  readonly retention: RetentionPolicy;
}

/** The feature definitions in FEATURE_DIR (those FEATURE_SETS names, or all), and the retention that covers the longest lookback plus the grace. */
export function loadFeatures(config: Config): Features {
  const all = loadFeatureSets(config.FEATURE_DIR);
  const wanted = config.FEATURE_SETS;
  const unknown = wanted?.filter((id) => !all.has(id)) ?? [];
  if (unknown.length > 0)
    throw new Error(
      `FEATURE_SETS names ${unknown.join(', ')}, not in ${config.FEATURE_DIR} (${[...all.keys()].join(', ')})`,
    );
  const featureSets = wanted ? new Map(wanted.map((id) => [id, all.get(id)!] as const)) : all;
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
 * The Redis (or Redis Cluster) client the config names, or undefined for the embedded in-memory store.
 * `failFast`: the API fails fast while Redis is away (and scores degraded); the worker waits for it and loses
 * nothing.
 */
export function createRedisClient(
  config: Config,
  o: { failFast: boolean },
  logger: Logger,
): Redis | Cluster | undefined {
  const clientOptions = {
    enableOfflineQueue: !o.failFast,
    maxRetriesPerRequest: o.failFast ? 0 : null,
    enableAutoPipelining: false,
    lazyConnect: false,
    // TCP keepalive after 30 s idle: a peer gone behind a load balancer or NAT is noticed in about a minute, not
    // after the OS default of two hours (ioredis 5's keepAlive: 0 leaves the OS default).
    keepAlive: 30_000,
  };
  if (config.REDIS_CLUSTER_NODES) {
    const nodes = config.REDIS_CLUSTER_NODES.map((hp) => {
      const [host, port] = hp.split(':');
      return { host: host!, port: Number(port ?? 6379) };
    });
    return watchErrors(
      new Cluster(nodes, { enableOfflineQueue: !o.failFast, redisOptions: clientOptions }),
      logger,
    );
  }
  if (config.REDIS_URL) return watchErrors(new Redis(config.REDIS_URL, clientOptions), logger);
  return undefined;
}

/**
 * The feature store on `client` (it closes the client when closed; `pipeline`, the client's per-turn pipeline
 * when other stores share it), or the in-memory store without one. Every
 * store refuses events dated more than MAX_EVENT_FUTURE_MS after `clock.now()`.
 */
export function createStore(
  config: Config,
  retention: RetentionPolicy,
  client: Redis | Cluster | undefined,
  clock: Clock,
  pipeline?: TurnPipeline,
): FeatureStore {
  const limit = { clock, maxFutureMs: config.MAX_EVENT_FUTURE_MS };
  return client
    ? new RedisFeatureStore(client, { prefix: config.REDIS_KEY_PREFIX, retention, limit, pipeline })
    : new MemoryFeatureStore(retention, limit);
}

/** Where workers record their progress: `<prefix>:workers` on `client`, or this process's own memory. */
export function createProgressStore(
  config: Config,
  client: Redis | Cluster | undefined,
  clock: Clock,
): WorkerProgressStore {
  return client
    ? new RedisProgressStore(client, { prefix: config.REDIS_KEY_PREFIX, clock })
    : new MemoryProgressStore(clock);
}

/** The decision log on `client` (`<prefix>:dl:…`, `{<prefix>:perf:…}`), or in this process's memory. */
export function createDecisionLog(
  config: Config,
  client: Redis | Cluster | undefined,
  clock: Clock,
  pipeline?: TurnPipeline,
): DecisionLog {
  const horizonMs = config.LABEL_HORIZON_DAYS * DAY_MS;
  return client
    ? new RedisDecisionLog(client, { prefix: config.REDIS_KEY_PREFIX, clock, horizonMs, pipeline })
    : new MemoryDecisionLog(clock, horizonMs);
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

/**
 * Resolves once `client` is connected, or after `timeoutMs` (a fail-fast client refuses commands until then,
 * and what starts next — the fleet reading the serving state — should find it connected when Redis is up).
 */
export function connected(client: Redis | Cluster, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    timer.unref();
    client.once('ready', done);
  });
}
