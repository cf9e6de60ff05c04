import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/adapters/clock/system-clock.js';
import { RedisAnswerStore } from '../../src/adapters/redis/redis-answer-store.js';
import { RedisDecisionLog } from '../../src/adapters/redis/redis-decision-log.js';
import { type Coalesced, TurnPipeline } from '../../src/adapters/redis/turn-pipeline.js';
import { DAY_MS } from '../../src/domain/features/time.js';
import { Deadline } from '../../src/usecases/scoring/deadline.js';
import { DecisionRecorder } from '../../src/usecases/scoring/decision-recorder.js';
import { SharedAnswers } from '../../src/usecases/scoring/shared-answers.js';
import { silentLogger } from '../helpers/logger.js';
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
    cluster?.disconnect();
  });

  /** Counts the pipelines the client makes until `restore`. */
  function countPipelines() {
    const sent: string[] = [];
    const original = redis.pipeline.bind(redis);
    redis.pipeline = ((...args: Parameters<Redis['pipeline']>) => {
      sent.push('pipeline');
      return original(...args);
    }) as Redis['pipeline'];
    const restore = () => {
      redis.pipeline = original;
    };
    return { sent, restore };
  }

  it('sends the commands of every caller in one turn as one pipeline, each caller getting its own replies', async () => {
    const pipeline = new TurnPipeline(redis);
    const { sent, restore } = countPipelines();
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
      restore();
    }
  });

  /** MGET carrying up to `max` keys, and the sizes of the commands it issued. */
  function mget(max: number) {
    const sizes: number[] = [];
    const kind: Coalesced<Redis | Cluster, string, string | null> = {
      max,
      issue: (c, keys) => {
        sizes.push(keys.length);
        return c.mget(...keys);
      },
      split: (reply) => reply as (string | null)[],
    };
    return { kind, sizes };
  }

  it('carries the items of every caller in one turn in as few commands as their kind allows', async () => {
    const pipeline = new TurnPipeline(redis);
    const keys = Array.from({ length: 10 }, (_, i) => `${prefix}:m${i}`);
    await redis.mset(...keys.flatMap((k, i) => [k, `v${i}`]));
    const { kind, sizes } = mget(4);
    const { sent, restore } = countPipelines();
    try {
      const [results, other] = await Promise.all([
        Promise.all([...keys, `${prefix}:none`].map((k) => pipeline.item(kind, k))),
        pipeline.exec([(r) => r.get(keys[0]!)]),
      ]);
      expect(results).toEqual([...keys.map((_, i) => `v${i}`), null]);
      expect(other).toEqual(['v0']);
      expect(sizes).toEqual([4, 4, 3]);
      expect(sent).toEqual(['pipeline']);
    } finally {
      restore();
    }
  });

  it('rejects the items of a coalesced command that failed or answered too few, and no other caller', async () => {
    const pipeline = new TurnPipeline(redis);
    await redis.set(`${prefix}:word`, 'not a number');
    const failing: Coalesced<Redis | Cluster, string, number> = {
      max: 8,
      issue: (c, keys) => c.incr(keys[0]!),
      split: (reply) => [reply as number],
    };
    const short: Coalesced<Redis | Cluster, string, string | null> = {
      max: 8,
      issue: (c, keys) => c.mget(...keys),
      split: (reply) => (reply as (string | null)[]).slice(1),
    };
    const [bad, truncated, good] = await Promise.allSettled([
      pipeline.item(failing, `${prefix}:word`),
      Promise.all([pipeline.item(short, `${prefix}:a`), pipeline.item(short, `${prefix}:b`)]),
      pipeline.exec([(r) => r.get(`${prefix}:word`)]),
    ]);
    expect(String((bad as PromiseRejectedResult).reason)).toMatch(/not an integer/);
    expect(String((truncated as PromiseRejectedResult).reason)).toMatch(/answered 1 results for 2 items/);
    expect(good).toEqual({ status: 'fulfilled', value: ['not a number'] });
  });

  it("rejects only the item whose part of a coalesced reply is an error (a script's per-key redis.pcall)", async () => {
    const pipeline = new TurnPipeline(redis);
    await redis.set(`${prefix}:s1`, 'one');
    await redis.hset(`${prefix}:h`, 'f', 'v');
    const getAll: Coalesced<Redis | Cluster, string, string> = {
      max: 8,
      issue: (c, keys) =>
        c.eval(
          "local out = {} for k = 1, #KEYS do out[k] = redis.pcall('GET', KEYS[k]) or '' end return out",
          keys.length,
          ...keys,
        ),
      split: (reply) => reply as string[],
    };
    const [one, wrong, none] = await Promise.allSettled(
      [`${prefix}:s1`, `${prefix}:h`, `${prefix}:none`].map((k) => pipeline.item(getAll, k)),
    );
    expect(one).toEqual({ status: 'fulfilled', value: 'one' });
    expect(String((wrong as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
    expect(none).toEqual({ status: 'fulfilled', value: '' });
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

  it('sends an answer kept and the decision recorded after a response in one write', async () => {
    const pipeline = new TurnPipeline<Redis | Cluster>(redis);
    const answers = new RedisAnswerStore(redis, prefix, pipeline);
    const shared = new SharedAnswers({
      store: answers,
      ttlMs: DAY_MS,
      pendingTtlMs: 1_000,
      clock: systemClock,
      logger: silentLogger(),
    });
    const log = new RedisDecisionLog(redis, { prefix, clock: systemClock, horizonMs: DAY_MS, pipeline });
    const recorder = new DecisionRecorder({ log, model: 'm', logger: silentLogger() });
    const fingerprint = shared.fingerprint('{"transaction_id":"x1"}');
    const deadline = new Deadline(systemClock.monotonic() + 10_000, systemClock);
    expect(await shared.claim([{ id: 'x1', fingerprint }], deadline)).toEqual([
      { kind: 'compute', owned: true, pending: false },
    ]);
    // The socket's writes: one per pipeline, one per command sent on its own.
    const socket = (redis as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream;
    const write = socket.write;
    let writes = 0;
    socket.write = function (this: unknown, ...a: unknown[]) {
      writes++;
      return write.apply(this, a);
    };
    try {
      // As the scorer does once it has answered: keep the answer, record the decision, in one turn.
      const answer = { result: { transaction_id: 'x1' }, features: {} } as never;
      shared.remember('x1', fingerprint, answer);
      const at = Date.now();
      recorder.record([
        {
          transactionId: 'x1',
          decisions: [{ version: '1', role: 'active', score: 0.2, decision: 'approve', at }],
        },
      ]);
      await recorder.flush();
      expect(writes).toBe(1);
    } finally {
      socket.write = write;
    }
    expect(await answers.peek('x1')).toMatchObject({ state: 'answered', fingerprint });
    expect(await redis.hkeys(`${prefix}:dl:m:x1`)).toEqual(['1']);
  });

  it('on a cluster, sends each command to its slot and answers in order', async () => {
    const pipeline = new TurnPipeline(cluster);
    const keys = Array.from({ length: 20 }, (_, i) => `${prefix}:c${i}`);
    await pipeline.exec(keys.map((k, i) => (c) => c.set(k, String(i))));
    expect(await pipeline.exec(keys.map((k) => (c) => c.get(k)))).toEqual(keys.map((_, i) => String(i)));
    const { kind, sizes } = mget(8);
    // Keys in slots of their own: a coalesced item is one command each on a cluster.
    expect(await Promise.all(keys.map((k) => pipeline.item(kind, k)))).toEqual(keys.map((_, i) => String(i)));
    expect(sizes).toEqual(keys.map(() => 1));
    // A key's own error rejects its item there too.
    await cluster.hset(`${prefix}:ch`, 'f', 'v');
    await expect(pipeline.item(kind, `${prefix}:ch`)).resolves.toBeNull();
    const oneByOne: Coalesced<Redis | Cluster, string, string> = {
      max: 8,
      issue: (c, [key]) => c.eval("return { redis.pcall('GET', KEYS[1]) }", 1, key!),
      split: (reply) => reply as string[],
    };
    await expect(pipeline.item(oneByOne, `${prefix}:ch`)).rejects.toThrow(/WRONGTYPE/);
    await expect(pipeline.item(oneByOne, keys[3]!)).resolves.toBe('3');
    await cluster.del(`${prefix}:ch`);
    await pipeline.exec(keys.map((k) => (c) => c.del(k)));
  });
});
