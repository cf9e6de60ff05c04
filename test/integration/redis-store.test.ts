import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { RedisFeatureStore } from '../../src/adapters/redis/redis-store.js';
import { DAY_MS } from '../../src/domain/features/time.js';
import { featureStoreConformance } from '../conformance/feature-store.suite.js';
import { requireRedis, requireRedisCluster, uniqueName } from '../helpers/services.js';

featureStoreConformance('redis', {
  async create(retention) {
    const { url } = await requireRedis();
    return new RedisFeatureStore(new Redis(url), { prefix: uniqueName('conf'), retention });
  },
});

featureStoreConformance('redis cluster', {
  async create(retention) {
    const { nodes } = await requireRedisCluster();
    return new RedisFeatureStore(new Cluster(nodes), { prefix: uniqueName('conf'), retention });
  },
});

describe('RedisFeatureStore expiry', () => {
  it('gives every key of a written entity an expiry past the horizon, refreshed only as event time moves on', async () => {
    const { url } = await requireRedis();
    const redis = new Redis(url);
    const prefix = uniqueName('ttl');
    const horizonMs = 10 * DAY_MS;
    const store = new RedisFeatureStore(redis, { prefix, retention: { horizonMs }, ttlRefreshMs: DAY_MS });
    const t0 = Date.parse('2018-05-01T00:00:00Z');
    const write = (id: string, t: number) =>
      store.apply([{ kind: 'tx', key: { entity: 'customer', id: 'C1' }, txId: id, t, amount: 1 }]);
    const keys = ['z', 'd'].map((k) => `${prefix}:{customer:C1}:${k}`);
    const ttls = () => Promise.all(keys.map((k) => redis.pttl(k)));

    await write('a', t0);
    for (const ttl of await ttls()) expect(ttl).toBeGreaterThan(horizonMs + DAY_MS - 60_000);
    await Promise.all(keys.map((k) => redis.pexpire(k, 5 * DAY_MS)));
    await write('b', t0 + DAY_MS / 2);
    for (const ttl of await ttls()) expect(ttl).toBeLessThanOrEqual(5 * DAY_MS);
    await write('c', t0 + DAY_MS);
    for (const ttl of await ttls()) expect(ttl).toBeGreaterThan(horizonMs + DAY_MS - 60_000);
    await redis.quit();
  });
});
