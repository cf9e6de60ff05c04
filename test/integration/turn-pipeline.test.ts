import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TurnPipeline } from '../../src/adapters/redis/turn-pipeline.js';
import { requireRedis, requireRedisCluster, uniqueName } from '../helpers/services.js';

describe('TurnPipeline', () => {
  let redis: Redis;
  let cluster: Cluster;
  const prefix = uniqueName('turn');

  beforeAll(async () => {
    redis = new Redis((await requireRedis()).url);
    cluster = new Cluster((await requireRedisCluster()).nodes);
  });

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    cluster.disconnect();
  });

  it('sends the commands of every caller in one turn as one pipeline, each caller getting its own replies', async () => {
    const pipeline = new TurnPipeline(redis);
    const sent: string[] = [];
    const original = redis.pipeline.bind(redis);
    redis.pipeline = ((...args: Parameters<Redis['pipeline']>) => {
      sent.push('pipeline');
      return original(...args);
    }) as Redis['pipeline'];
    try {
      const [a, b, c] = await Promise.all([
        pipeline.exec([(r) => r.set(`${prefix}:a`, '1'), (r) => r.incr(`${prefix}:n`)]),
        pipeline.exec([(r) => r.incr(`${prefix}:n`)]),
        pipeline.exec([(r) => r.get(`${prefix}:a`), (r) => r.get(`${prefix}:missing`)]),
      ]);
      expect(a).toEqual(['OK', 1]);
      expect(b).toEqual([2]);
      expect(c).toEqual(['1', null]);
      expect(sent).toEqual(['pipeline']);
    } finally {
      redis.pipeline = original;
    }
  });

  it('rejects only the caller whose command failed', async () => {
    const pipeline = new TurnPipeline(redis);
    await redis.set(`${prefix}:text`, 'not a number');
    const [bad, good] = await Promise.allSettled([
      pipeline.exec([(r) => r.incr(`${prefix}:text`)]),
      pipeline.exec([(r) => r.get(`${prefix}:text`)]),
    ]);
    expect(bad.status).toBe('rejected');
    expect(String((bad as PromiseRejectedResult).reason)).toMatch(/not an integer/);
    expect(good).toEqual({ status: 'fulfilled', value: ['not a number'] });
  });

  it('on a cluster, sends each command to its slot and answers in order', async () => {
    const pipeline = new TurnPipeline(cluster);
    const keys = Array.from({ length: 20 }, (_, i) => `${prefix}:c${i}`);
    await pipeline.exec(keys.map((k, i) => (c) => c.set(k, String(i))));
    expect(await pipeline.exec(keys.map((k) => (c) => c.get(k)))).toEqual(keys.map((_, i) => String(i)));
    await pipeline.exec(keys.map((k) => (c) => c.del(k)));
  });
});
