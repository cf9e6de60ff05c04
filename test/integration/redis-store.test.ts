import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { RedisFeatureStore } from '../../src/adapters/redis/redis-store.js';
import { DAY_MS } from '../../src/domain/features/time.js';
import { rowsOf } from '../../src/ports/feature-store.js';
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

const T0 = Date.parse('2018-05-01T00:00:00Z');

/** A store with a 10-day horizon and a 1-day refresh, and one customer's key to write to and inspect. */
async function oneCustomer(name: string) {
  const { url } = await requireRedis();
  const redis = new Redis(url);
  const prefix = uniqueName(name);
  const horizonMs = 10 * DAY_MS;
  const store = new RedisFeatureStore(redis, { prefix, retention: { horizonMs }, ttlRefreshMs: DAY_MS });
  const write = (id: string, t: number) =>
    store.apply([{ kind: 'tx', key: { entity: 'customer', id: 'C1' }, txId: id, t, amount: 1 }]);
  const ids = async () =>
    rowsOf((await store.read([{ entity: 'customer', id: 'C1', from: 0, to: 2 * T0 }]))[0]!).map((r) => r.id);
  return { redis, horizonMs, write, ids, key: `${prefix}:{customer:C1}` };
}
describe('RedisFeatureStore upkeep', () => {
  it('gives a written entity an expiry past the horizon, refreshed only as event time moves on', async () => {
    const { redis, horizonMs, write, key } = await oneCustomer('ttl');
    await write('a', T0);
    expect(await redis.pttl(key)).toBeGreaterThan(horizonMs + DAY_MS - 60_000);
    await redis.pexpire(key, 5 * DAY_MS);
    await write('b', T0 + DAY_MS / 2);
    expect(await redis.pttl(key)).toBeLessThanOrEqual(5 * DAY_MS);
    await write('c', T0 + DAY_MS);
    expect(await redis.pttl(key)).toBeGreaterThan(horizonMs + DAY_MS - 60_000);
    await redis.quit();
  });

  it('trims once per refresh of event time, and reads never show what lies past the horizon meanwhile', async () => {
    const { redis, horizonMs, write, ids, key } = await oneCustomer('trim');
    await write('a', T0);
    await write('b', T0 + DAY_MS / 2);
    // A refresh past the last upkeep: everything at or before newest − horizon goes.
    await write('c', T0 + horizonMs + DAY_MS / 4);
    expect(await redis.hexists(key, 'a')).toBe(0);
    expect(await ids()).toEqual(['b', 'c']);
    // Within the refresh: 'b' has fallen past the horizon but waits for the next upkeep, unseen.
    await write('d', T0 + horizonMs + (3 * DAY_MS) / 4);
    expect(await redis.hexists(key, 'b')).toBe(1);
    expect(await ids()).toEqual(['c', 'd']);
    expect(await write('e', T0 + DAY_MS / 2)).toEqual(['late']);
    await write('f', T0 + horizonMs + 2 * DAY_MS);
    expect(await redis.hkeys(key).then((k) => k.sort())).toEqual(['', 'c', 'd', 'f']);
    await redis.quit();
  });
});
