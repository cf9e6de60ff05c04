import { Cluster, Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import { loadFeatureSets } from '../../src/adapters/fs/feature-set-files.js';
import { MemoryFeatureStore } from '../../src/adapters/memory/memory-store.js';
import { RedisFeatureStore } from '../../src/adapters/redis/redis-store.js';
import {
  type CompiledFeatureSet,
  entityUnion,
  labelEvents,
  transactionEvents,
} from '../../src/domain/features/engine.js';
import { rowsOf } from '../../src/domain/features/records.js';
import { TILE_LEVELS, tileOf } from '../../src/domain/features/tiles.js';
import { DAY_MS } from '../../src/domain/features/time.js';
import type { FutureLimit } from '../../src/ports/clock.js';
import type { FeatureStore } from '../../src/ports/feature-store.js';
import { featureStoreConformance } from '../conformance/feature-store.suite.js';
import { generateTransactions, rng } from '../helpers/generate.js';
import { requireRedis, requireRedisCluster, uniqueName } from '../helpers/services.js';

featureStoreConformance('redis', {
  async create(retention, limit) {
    const { url } = await requireRedis();
    return new RedisFeatureStore(new Redis(url), { prefix: uniqueName('conf'), retention, limit });
  },
  links: true,
});

featureStoreConformance('redis cluster', {
  async create(retention, limit) {
    const { nodes } = await requireRedisCluster();
    return new RedisFeatureStore(new Cluster(nodes), { prefix: uniqueName('conf'), retention, limit });
  },
  links: true,
});

// Entities are kept as logs until they grow; here every one is tiles from its first event, or becomes tiles
// after a few (state carried over mid-stream: labels before and after, redeliveries, what lies past the horizon).
for (const logFields of [0, 5])
  featureStoreConformance(`redis, tiles beyond ${logFields} log fields`, {
    async create(retention, limit) {
      const { url } = await requireRedis();
      return new RedisFeatureStore(new Redis(url), {
        prefix: uniqueName('conf'),
        retention,
        limit,
        logFields,
      });
    },
    links: true,
  });

featureStoreConformance('redis cluster, tiles beyond 5 log fields', {
  async create(retention, limit) {
    const { nodes } = await requireRedisCluster();
    return new RedisFeatureStore(new Cluster(nodes), {
      prefix: uniqueName('conf'),
      retention,
      limit,
      logFields: 5,
    });
  },
  links: true,
});

const T0 = Date.parse('2018-05-01T00:00:00Z');

/** A store with a 10-day horizon and a 1-day refresh, and one customer's key to write to and inspect. */
async function oneCustomer(name: string, limit?: FutureLimit, logFields?: number) {
  const { url } = await requireRedis();
  const redis = new Redis(url);
  const prefix = uniqueName(name);
  const horizonMs = 10 * DAY_MS;
  const store = new RedisFeatureStore(redis, {
    prefix,
    retention: { horizonMs },
    ttlRefreshMs: DAY_MS,
    ...(limit ? { limit } : {}),
    ...(logFields === undefined ? {} : { logFields }),
  });
  const write = (id: string, t: number) =>
    store.apply([{ kind: 'tx', key: { entity: 'customer', id: 'C1' }, txId: id, t, amount: 1 }]);
  const ids = async () =>
    rowsOf((await store.read([{ entity: 'customer', id: 'C1', from: 0, to: 2 * T0 }]))[0]!).map((r) => r.id);
  return { redis, store, horizonMs, write, ids, key: `${prefix}:{customer:C1}` };
}

/** oneCustomer kept as tiles from its first event, with labels and the list of labels waiting for their transaction. */
async function tiledCustomer(name: string) {
  const c = await oneCustomer(name, undefined, 0);
  const label = (id: string, t: number, fraud = true) =>
    c.store.apply([{ kind: 'label', key: { entity: 'customer', id: 'C1' }, txId: id, t, fraud }]);
  const waiting = async () => (await c.redis.zrange(`${c.key}:labels`, '0', '-1')).filter((id) => id !== '');
  return { ...c, label, waiting };
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

  it('keeps a grown entity as tiles, trimmed by tile, with the log holding only the metadata', async () => {
    const { redis, horizonMs, write, ids, key } = await oneCustomer('tiles', undefined, 2);
    await write('a', T0);
    expect(await redis.exists(`${key}:tiles`)).toBe(0);
    // Three fields (metadata, a, b) > 2: tiles from now on, and the log holds only the metadata.
    await write('b', T0 + DAY_MS / 2);
    expect(await redis.hkeys(key)).toEqual(['']);
    expect(await redis.hget(key, '')).toMatch(/^@/);
    expect(await ids()).toEqual(['a', 'b']);
    await write('c', T0 + horizonMs + DAY_MS / 4);
    expect(await ids()).toEqual(['b', 'c']);
    await write('d', T0 + horizonMs + (3 * DAY_MS) / 4);
    expect(await ids()).toEqual(['c', 'd']);
    expect(await write('e', T0 + DAY_MS / 2)).toEqual(['late']);
    await write('f', T0 + horizonMs + 2 * DAY_MS);
    const fields = (await redis.hkeys(`${key}:tiles`)).sort();
    expect(fields.filter((x) => !x.includes(' '))).toEqual(['c', 'd', 'f']);
    // The tiles of c, d and f and no others: c and d share a day (its aggregate, and each its own tile one level
    // down, where a tile of one record is that record); f is alone in its day.
    const [c, d, f] = [
      T0 + horizonMs + DAY_MS / 4,
      T0 + horizonMs + (3 * DAY_MS) / 4,
      T0 + horizonMs + 2 * DAY_MS,
    ];
    const below = TILE_LEVELS.at(-2)!;
    const [day, part] = [
      (t: number) => `d ${tileOf(t, DAY_MS)}`,
      (t: number) => `${below.name} ${tileOf(t, below.ms)}`,
    ];
    expect(fields.filter((x) => x.includes(' '))).toEqual([day(c), day(f), part(c), part(d)].sort());
    expect(await redis.hget(`${key}:tiles`, day(c))).toMatch(/^2 0 /);
    expect(await redis.hget(`${key}:tiles`, day(f))).toMatch(/^=\d+ \d+ 1 0 f$/);
    expect(await redis.pttl(`${key}:tiles`)).toBeGreaterThan(horizonMs);
    await redis.quit();
  });

  it('trims tiles by the days that fell out: records, ids and labels, those waiting for their transaction too', async () => {
    const { redis, horizonMs, write, label, waiting, key } = await tiledCustomer('trim-days');
    // Day 0: three transactions in one ten-minute tile (records "r k i"), one alone, a label after its
    // transaction, a label whose transaction never comes, and one whose label comes late (day 4).
    for (const [i, id] of ['a', 'b', 'c'].entries()) await write(id, T0 + 60_000 * (i + 1));
    await write('d', T0 + DAY_MS / 2);
    await label('a', T0 + DAY_MS / 2 + 1);
    await label('ghost', T0 + DAY_MS / 2 + 2);
    await write('late', T0 + DAY_MS / 2 + 3);
    await label('late', T0 + 4 * DAY_MS);
    // Day 1 and a label waiting for a transaction of day 2, which arrives.
    await write('e', T0 + DAY_MS + 1_000);
    await label('early', T0 + DAY_MS + 2_000);
    await write('early', T0 + 2 * DAY_MS + 1_000);
    // "" at +inf: these tiles list their waiting labels (none left over from before the list existed).
    expect(await redis.zrange(`${key}:labels`, '0', '-1')).toEqual(['ghost', 'early', '']);
    expect(await waiting()).toEqual(['ghost', 'early']);
    const fieldsOf = async () => (await redis.hkeys(`${key}:tiles`)).sort();
    const dayTile = (t: number) => `d ${tileOf(t, DAY_MS)}`;

    // Newest moves a horizon past day 0's end: day 0's tiles, records and ids go; the late label waits.
    await write('now1', T0 + horizonMs + DAY_MS + 5_000);
    let fields = await fieldsOf();
    expect(fields.filter((f) => !f.includes(' '))).toEqual(['e', 'early', 'now1']);
    expect(fields).not.toContain(dayTile(T0 + 1));
    expect(fields.filter((f) => f.startsWith('r '))).toEqual([]);
    expect(fields.filter((f) => f.startsWith(' '))).toEqual([' early', ' late']);
    // The early label's time has passed too, but its transaction is held: it goes with that transaction.
    expect(await waiting()).toEqual(['late']);

    // Past day 4: the late label goes, and days 1 and 2 with the early transaction and its label.
    const newest = T0 + horizonMs + 4 * DAY_MS + 5_000;
    await write('now2', newest);
    fields = await fieldsOf();
    expect(fields.filter((f) => !f.includes(' '))).toEqual(['now1', 'now2']);
    expect(fields.filter((f) => f.startsWith(' '))).toEqual([]);
    expect(await waiting()).toEqual([]);
    const days = fields.filter((f) => f.startsWith('d ')).map((f) => Number(f.slice(2)));
    expect(Math.min(...days)).toBeGreaterThanOrEqual(tileOf(newest - horizonMs, DAY_MS));
    await redis.quit();
  });

  it('lists a late label whose own upkeep trims its transaction, so that a later trim drops it', async () => {
    const { redis, horizonMs, write, label, key } = await tiledCustomer('trim-late-label');
    await write('a', T0 + 1_000);
    // A chargeback more than a horizon after its transaction: its own upkeep trims day 0 and 'a' with it.
    expect(await label('a', T0 + horizonMs + DAY_MS + 5_000)).toEqual(['applied']);
    for (let d = 2; d <= 40; d++) await write(`n${d}`, T0 + horizonMs + d * DAY_MS);
    expect((await redis.hkeys(`${key}:tiles`)).filter((f) => f === ' a' || f === 'a')).toEqual([]);
    await redis.quit();
  });

  it('trims the tiles of an entity written before waiting labels were listed once whole, and lists them', async () => {
    const { redis, horizonMs, write, label, waiting, key } = await tiledCustomer('trim-migrate');
    await write('a', T0 + 1_000);
    await label('ghost', T0 + 2_000);
    await write('e', T0 + 4_000);
    await label('ghost2', T0 + 5 * DAY_MS);
    await write('b', T0 + 5 * DAY_MS + 1_000);
    // As the layout was before: no list of waiting labels.
    await redis.del(`${key}:labels`);
    // The first upkeep reads the tiles whole: day 0 goes with the ghost label; ghost2 is listed.
    await write('c', T0 + horizonMs + DAY_MS + 5_000);
    let fields = await redis.hkeys(`${key}:tiles`);
    expect(fields.filter((f) => !f.includes(' ') || f.startsWith(' ')).sort()).toEqual([
      ' ghost2',
      'b',
      'c',
      'ghost2',
    ]);
    expect(await waiting()).toEqual(['ghost2']);
    for (let d = 6; d <= 8; d++) await write(`n${d}`, T0 + horizonMs + d * DAY_MS);
    fields = await redis.hkeys(`${key}:tiles`);
    expect(fields.filter((f) => !f.includes(' ') || f.startsWith(' ')).sort()).toEqual([
      'c',
      'n6',
      'n7',
      'n8',
    ]);
    expect(await waiting()).toEqual([]);
    await redis.quit();
  });

  it('starts from empty tiles when an entity whose log key was lost alone grows into tiles again', async () => {
    const { redis, write, ids, key } = await oneCustomer('regrow', undefined, 2);
    await write('a', T0);
    await write('b', T0 + 1_000);
    expect(await redis.exists(`${key}:tiles`)).toBe(1);
    // The log alone is gone (evicted, or deleted by hand): the entity starts again as a log.
    await redis.del(key);
    await write('c', T0 + 2_000);
    await write('d', T0 + 3_000);
    expect(await ids()).toEqual(['c', 'd']);
    expect((await redis.hkeys(`${key}:tiles`)).filter((x) => !x.includes(' ')).sort()).toEqual(['c', 'd']);
    await redis.quit();
  });

  it('sends nothing to Redis for an event refused as future: no key, no field, no expiry pushed back', async () => {
    const clock = { now: () => T0 + 30 * DAY_MS, monotonic: () => 0 };
    const { redis, store, write, key } = await oneCustomer('future', { clock, maxFutureMs: 600_000 });
    const typo = Date.parse('2081-05-01T00:00:00Z');
    expect(await write('typo', typo)).toEqual(['future']);
    expect(await redis.exists(key)).toBe(0);
    expect(await write('a', T0)).toEqual(['applied']);
    await redis.pexpire(key, 5 * DAY_MS);
    const before = await redis.hgetall(key);
    expect(await write('typo', typo)).toEqual(['future']);
    const label = {
      kind: 'label',
      key: { entity: 'customer', id: 'C1' },
      txId: 'a',
      t: typo,
      fraud: true,
    } as const;
    expect(await store.apply([label])).toEqual(['future']);
    expect(await redis.hgetall(key)).toEqual(before);
    expect(await redis.pttl(key)).toBeLessThanOrEqual(5 * DAY_MS);
    await redis.quit();
  });
});

const SETS = [...loadFeatureSets('features').values()];
const ENTITIES = entityUnion(SETS);

describe('RedisFeatureStore under constant trimming', () => {
  it.each([
    ['logs', undefined],
    ['tiles', 0],
    ['logs becoming tiles', 12],
  ])(
    'equals the in-memory store, outcome by outcome and record by record, with events out of order (%s)',
    async (_, logFields) => {
      const { url } = await requireRedis();
      const retention = { horizonMs: 3 * DAY_MS };
      const redis = new RedisFeatureStore(new Redis(url), {
        prefix: uniqueName('churn'),
        retention,
        ...(logFields === undefined ? {} : { logFields }),
      });
      const memory = new MemoryFeatureStore(retention);
      const random = rng(5);
      const txs = generateTransactions({ seed: 5, days: 20, customers: 8, terminals: 5, perDay: 40 });
      // Up to two days early or late (some beyond the horizon, so refused), labels for frauds, redeliveries.
      const label = (x: (typeof txs)[number], fraud: boolean, customer = x.customer_id) =>
        labelEvents({ ...x, customer_id: customer, txId: x.id, fraud }, ENTITIES);
      const order = txs
        .map((x) => ({ x, at: x.t + (random() - 0.5) * 4 * DAY_MS }))
        .sort((a, b) => a.at - b.at)
        .map(({ x }) => x);
      const events = order.flatMap((x, k) => {
        const r = random();
        return [
          // Labels before their transaction, after it, corrected, and for customers with no transaction at all.
          ...(x.fraud && r < 0.3 ? label(x, true) : []),
          ...transactionEvents(x, ENTITIES),
          ...(x.fraud && r >= 0.3 ? label(x, true) : []),
          ...(x.fraud && r >= 0.8 ? label(x, false) : []),
          ...(r < 0.02 ? label(x, true, `labels-only-${k % 3}`) : []),
          // Redeliveries: at once, and of an event from days before (some of them past the horizon by now).
          ...(r < 0.05 ? transactionEvents(x, ENTITIES) : []),
          ...(r > 0.9 && k > 200 ? transactionEvents(order[k - 200]!, ENTITIES) : []),
        ];
      });
      const everything = [
        ...new Set(txs.flatMap((x) => [`customer:${x.customer_id}`, `terminal:${x.terminal_id}`])),
        ...[0, 1, 2].map((k) => `customer:labels-only-${k}`),
      ]
        .map((k) => k.split(':') as [string, string])
        .map(([entity, id]) => ({ entity, id, from: 0, to: Number.MAX_SAFE_INTEGER }));
      // Arrival numbers are each store's own; the order they give is what must agree.
      const rows = async (store: FeatureStore) =>
        (await store.read(everything)).map((c) => rowsOf(c).map(({ seq: _, ...r }) => r));
      const outcomes = { redis: [] as string[], memory: [] as string[] };
      // And the features of every transaction through the bounded read, as the in-memory store gives them.
      const features = async (store: FeatureStore, set: CompiledFeatureSet) =>
        [...(await store.summarize(txs.flatMap((x) => set.summaryQueries(x))))].flatMap((_, k, all) =>
          k % set.entities.length === 0
            ? [[...set.compute(txs[k / set.entities.length]!, all.slice(k, k + set.entities.length))]]
            : [],
        );
      for (let i = 0; i < events.length; i += 100) {
        const batch = events.slice(i, i + 100);
        outcomes.redis.push(...(await redis.apply(batch)));
        outcomes.memory.push(...(await memory.apply(batch)));
        expect(await rows(redis), `after ${i + batch.length} events`).toEqual(await rows(memory));
        if (i % 1000 === 0)
          for (const set of SETS)
            expect(await features(redis, set), `after ${i + batch.length}`).toEqual(
              await features(memory, set),
            );
      }
      expect(outcomes.redis).toEqual(outcomes.memory);
      for (const o of ['applied', 'duplicate', 'late']) expect(outcomes.memory).toContain(o);
      await redis.close();
    },
  );
});

describe('RedisFeatureStore reads', () => {
  it('sends the reads of one event-loop turn in one pipeline, each caller getting its own entities', async () => {
    const { redis, store, write } = await oneCustomer('coalesce');
    await write('a', T0);
    await write('b', T0 + 1000);
    const pipelines = vi.spyOn(redis, 'pipeline');
    const window = (id: string, to: number) => ({ entity: 'customer', id, from: 0, to });
    const [one, two, none] = await Promise.all([
      store.read([window('C1', T0)]),
      store.read([window('C1', T0 + 1000), window('C2', T0)]),
      store.read([window('nobody', T0)]),
    ]);
    expect(pipelines).toHaveBeenCalledTimes(1);
    expect(one.map(rowsOf).map((r) => r.map((x) => x.id))).toEqual([['a']]);
    expect(two.map(rowsOf).map((r) => r.map((x) => x.id))).toEqual([['a', 'b'], []]);
    expect(none.map(rowsOf)).toEqual([[]]);
    pipelines.mockRestore();
    await redis.quit();
  });

  it('fails every reader of a turn when Redis cannot be reached, and leaves none waiting', async () => {
    const { url } = await requireRedis();
    const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    const store = new RedisFeatureStore(redis, {
      prefix: uniqueName('down'),
      retention: { horizonMs: DAY_MS },
    });
    await new Promise((ready) => redis.once('ready', ready));
    await store.ping();
    redis.disconnect();
    const window = (id: string) => ({ entity: 'customer', id, from: 0, to: T0 });
    const outcomes = await Promise.allSettled([
      store.read([window('A')]),
      store.read([window('B'), window('C')]),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
  });
});
