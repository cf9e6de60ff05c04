/**
 * Infrastructure check: the local Redis (scripts/services.sh up redis) and Redis Cluster
 * (scripts/services.sh up redis-cluster) work with ioredis — Lua scripts, large pipelines, cluster routing.
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HostPort, requireRedis, requireRedisCluster, uniqueName } from '../helpers/services.js';

// A velocity counter like the feature store's: add to a per-window counter, set its TTL on first write,
// and return [new count, ttl in ms].
const WINDOW_INCR_LUA = `
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
if count == tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return { count, redis.call('PTTL', KEYS[1]) }
`;

describe('redis (standalone)', () => {
  let redis: Redis;
  const prefix = uniqueName('infra-redis');

  beforeAll(async () => {
    const { url } = await requireRedis();
    redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
    await redis.connect();
  });

  afterAll(async () => {
    if (!redis) return;
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('runs a Lua script with EVALSHA and sees its effect', async () => {
    const sha = (await redis.script('LOAD', WINDOW_INCR_LUA)) as string;
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    const key = `${prefix}:velocity:card-1:60s`;

    const first = (await redis.evalsha(sha, 1, key, 5, 60_000)) as [number, number];
    expect(first[0]).toBe(5);
    expect(first[1]).toBeGreaterThan(59_000);
    expect(first[1]).toBeLessThanOrEqual(60_000);

    const second = (await redis.evalsha(sha, 1, key, 3, 60_000)) as [number, number];
    expect(second[0]).toBe(8);

    // The effect is real: the key holds the sum and keeps the TTL set by the first call.
    expect(await redis.get(key)).toBe('8');
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(first[1]);
  });

  it('pipelines 10,000 commands and returns every result in order', async () => {
    const n = 5_000;
    const pipeline = redis.pipeline();
    for (let i = 0; i < n; i++) {
      pipeline.set(`${prefix}:p:${i}`, String(i));
      pipeline.incrby(`${prefix}:p:${i}`, i);
    }
    expect(pipeline.length).toBe(2 * n);
    const results = await pipeline.exec();
    expect(results).toHaveLength(2 * n);
    for (let i = 0; i < n; i++) {
      const [setErr, setRes] = results![2 * i]!;
      const [incrErr, incrRes] = results![2 * i + 1]!;
      expect(setErr).toBeNull();
      expect(setRes).toBe('OK');
      expect(incrErr).toBeNull();
      expect(incrRes).toBe(2 * i);
    }
    const sample = await redis.mget(`${prefix}:p:0`, `${prefix}:p:1234`, `${prefix}:p:4999`);
    expect(sample).toEqual(['0', '2468', '9998']);
  });
});

describe('redis cluster', () => {
  let cluster: Cluster;
  let seeds: HostPort[];
  const direct: Redis[] = [];
  const prefix = uniqueName('infra-cluster');

  beforeAll(async () => {
    ({ nodes: seeds } = await requireRedisCluster());
    cluster = new Cluster(seeds, { redisOptions: { maxRetriesPerRequest: 2 }, lazyConnect: true });
    await cluster.connect();
  });

  afterAll(async () => {
    await Promise.all(direct.map((c) => c.quit()));
    if (cluster) await cluster.quit();
  });

  /** Who owns a slot, according to CLUSTER SLOTS. */
  async function ownerOf(slot: number): Promise<HostPort> {
    const slots = await cluster.cluster('SLOTS');
    const range = slots.find(([start, end]) => slot >= start && slot <= end);
    const master = range?.[2];
    if (!master) throw new Error(`no node owns slot ${slot}`);
    return { host: master[0], port: master[1] };
  }

  function directClient(node: HostPort): Redis {
    const c = new Redis({ host: node.host, port: node.port, maxRetriesPerRequest: 0, lazyConnect: true });
    direct.push(c);
    return c;
  }

  it('routes keyed commands to the node that owns the slot', async () => {
    const keys = Array.from({ length: 30 }, (_, i) => `${prefix}:k${i}`);
    for (const key of keys) await cluster.set(key, key.toUpperCase(), 'EX', 300);

    const owners = new Set<string>();
    for (const key of keys.slice(0, 10)) {
      const slot = (await cluster.cluster('KEYSLOT', key)) as number;
      const owner = await ownerOf(slot);
      owners.add(`${owner.host}:${owner.port}`);
      // Read straight from the owner: the key is there (no MOVED) ...
      const ownerClient = directClient(owner);
      expect(await ownerClient.get(key)).toBe(key.toUpperCase());
      // ... and another node redirects.
      const other = seeds.find((s) => s.port !== owner.port || s.host !== owner.host)!;
      await expect(directClient(other).get(key)).rejects.toThrow(/MOVED/);
    }
    // Keys spread over more than one master.
    expect(owners.size).toBeGreaterThan(1);
    expect(await cluster.get(keys[29]!)).toBe(keys[29]!.toUpperCase());
    await Promise.all(keys.map((k) => cluster.del(k)));
  });

  it('runs Lua and pipelines on one hash slot', async () => {
    const tag = `{${prefix}:card-7}`;
    const key = `${tag}:velocity:60s`;
    const result = (await cluster.eval(WINDOW_INCR_LUA, 1, key, 4, 60_000)) as [number, number];
    expect(result[0]).toBe(4);
    expect(result[1]).toBeGreaterThan(0);

    const pipeline = cluster.pipeline();
    for (let i = 0; i < 1_000; i++) pipeline.hset(`${tag}:h`, `f${i}`, i);
    pipeline.hlen(`${tag}:h`);
    const results = await pipeline.exec();
    expect(results).toHaveLength(1_001);
    expect(results!.every(([err]) => err === null)).toBe(true);
    expect(results!.at(-1)![1]).toBe(1_000);
    await cluster.del(`${tag}:h`, key);
  });
});
