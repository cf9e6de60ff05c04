import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisProgressStore } from '../../src/adapters/redis/redis-progress.js';
import { manualClock, progressStoreConformance } from '../conformance/progress-store.suite.js';
import { requireRedis, requireRedisCluster, uniqueName } from '../helpers/services.js';

const clients: (Redis | Cluster)[] = [];
afterAll(async () => {
  for (const c of clients) await c.quit().catch(() => c.disconnect());
});

progressStoreConformance('redis', {
  async create(clock, ttlMs) {
    const { url } = await requireRedis();
    const redis = new Redis(url);
    clients.push(redis);
    return new RedisProgressStore(redis, { prefix: uniqueName('progress'), clock, ttlMs });
  },
});

progressStoreConformance('redis cluster', {
  async create(clock, ttlMs) {
    const { nodes } = await requireRedisCluster();
    const cluster = new Cluster(nodes);
    clients.push(cluster);
    return new RedisProgressStore(cluster, { prefix: uniqueName('progress'), clock, ttlMs });
  },
});

describe('RedisProgressStore layout', () => {
  it('keeps one hash under the prefix, with an expiry, and drops the fields of workers gone past the TTL', async () => {
    const { url } = await requireRedis();
    const redis = new Redis(url);
    clients.push(redis);
    const prefix = uniqueName('progress');
    const m = manualClock();
    const ttlMs = 60_000;
    const store = new RedisProgressStore(redis, { prefix, clock: m.clock, ttlMs });
    const t = m.clock.now();
    await store.record({ member: 'gone', at: t, progressAt: t, lag: 0 });
    await store.record({ member: 'here', at: t + ttlMs + 1, progressAt: t, lag: 4 });
    const key = `${prefix}:workers`;
    expect(await redis.hgetall(key)).toEqual({ here: `${t + ttlMs + 1} ${t} 4` });
    const pttl = await redis.pttl(key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(ttlMs);
    await redis.del(key);
  });

  it('refuses values that are not numbers rather than writing them', async () => {
    const { url } = await requireRedis();
    const redis = new Redis(url);
    clients.push(redis);
    const store = new RedisProgressStore(redis, {
      prefix: uniqueName('progress'),
      clock: manualClock().clock,
    });
    await expect(store.record({ member: 'x', at: Number.NaN, progressAt: 0, lag: 0 })).rejects.toThrow(
      RangeError,
    );
  });
});
