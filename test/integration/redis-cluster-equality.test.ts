/**
 * Issue 8 (scale-out): the same events applied to a single Redis and to the 3-master Redis Cluster, both
 * through RedisFeatureStore with the client options `src/wiring/stores.ts` uses, give the same apply outcomes and exactly
 * the same features for every transaction (and the same as the in-memory store). Each entity is one key whose
 * slot comes from its hash tag, so every Lua script runs on one node; the entities spread over all three masters.
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../src/adapters/fs/feature-set-files.js';
import { MemoryFeatureStore } from '../../src/adapters/memory/memory-store.js';
import { RedisFeatureStore } from '../../src/adapters/redis/redis-store.js';
import {
  entityUnion,
  labelEvents,
  type TxInput,
  transactionEvents,
} from '../../src/domain/features/engine.js';
import type { ApplyOutcome, StoreEvent } from '../../src/domain/features/records.js';
import { DAY_MS } from '../../src/domain/features/time.js';
import type { FeatureStore } from '../../src/ports/feature-store.js';
import { generateTransactions } from '../helpers/generate.js';
import { requireRedis, requireRedisCluster, uniqueName } from '../helpers/services.js';

const sets = [...loadFeatureSets('features').values()];
const entities = entityUnion(sets);
const retention = { horizonMs: Math.max(...sets.map((s) => s.lookbackMs)) + DAY_MS };
// What src/wiring/stores.ts gives the worker (it must not lose writes): offline queue on, retry forever, no auto-pipelining.
const clientOptions = { enableOfflineQueue: true, maxRetriesPerRequest: null, enableAutoPipelining: false };

const txs = generateTransactions({ seed: 23, days: 10, customers: 240, terminals: 120, perDay: 600 });

/** Transactions in time order, each fraud label right after its transaction; then a redelivered slice. */
function eventStream(): StoreEvent[] {
  const out: StoreEvent[] = [];
  for (const t of txs) {
    out.push(...transactionEvents(t, entities));
    if (t.fraud) out.push(...labelEvents({ ...t, txId: t.id, fraud: true }, entities));
  }
  return [...out, ...out.slice(1000, 3000)];
}

const chunks = <T>(xs: readonly T[], n: number): T[][] =>
  Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));

async function applyAll(store: FeatureStore, events: readonly StoreEvent[]): Promise<ApplyOutcome[]> {
  const out: ApplyOutcome[] = [];
  for (const c of chunks(events, 1000)) out.push(...(await store.apply(c)));
  return out;
}

/**
 * Every feature of every set for every transaction, as read from the store now: through the bounded read scoring
 * uses (`summarize`), or from every record (`read`).
 */
async function features(
  store: FeatureStore,
  through: 'summarize' | 'read' = 'summarize',
): Promise<number[][]> {
  const out: number[][] = [];
  for (const c of chunks(txs, 250)) {
    for (const set of sets) {
      const windows =
        through === 'summarize'
          ? await store.summarize(c.flatMap((t: TxInput) => set.summaryQueries(t)))
          : await store.read(c.flatMap((t: TxInput) => set.queries(t)));
      const per = set.entities.length;
      c.forEach((t, i) => {
        out.push([...set.compute(t, windows.slice(i * per, (i + 1) * per))]);
      });
    }
  }
  return out;
}

// Entities as logs (the default for entities this small), and every entity as tiles from its first event.
describe.each([
  ['logs', undefined],
  ['tiles', 0],
])('single-node Redis = Redis Cluster (%s)', (layout, logFields) => {
  const prefix = uniqueName('eq');
  const options = { prefix, retention, ...(logFields === undefined ? {} : { logFields }) };
  let redis: Redis;
  let cluster: Cluster;
  let single: RedisFeatureStore;
  let sharded: RedisFeatureStore;

  beforeAll(async () => {
    const { url } = await requireRedis();
    const { nodes } = await requireRedisCluster();
    redis = new Redis(url, clientOptions);
    cluster = new Cluster(nodes, { enableOfflineQueue: true, redisOptions: clientOptions });
    single = new RedisFeatureStore(redis, options);
    sharded = new RedisFeatureStore(cluster, options);
  });

  afterAll(async () => {
    if (cluster) {
      for (const node of cluster.nodes('master')) await deleteByPrefix(node, prefix);
      await cluster.quit();
    }
    if (redis) {
      await deleteByPrefix(redis, prefix);
      await redis.quit();
    }
  });

  it('gives the same outcomes and the same features for every transaction', async () => {
    expect(sharded.kind).toBe('redis-cluster');
    const events = eventStream();
    const memory = new MemoryFeatureStore(retention);
    const [a, b, m] = [
      await applyAll(single, events),
      await applyAll(sharded, events),
      await applyAll(memory, events),
    ];
    expect(b).toEqual(a);
    expect(m).toEqual(a);
    expect(a.filter((o) => o === 'duplicate')).toHaveLength(2000);

    const [fa, fb, fm] = [await features(single), await features(sharded), await features(memory)];
    expect(fa).toHaveLength(txs.length * sets.length);
    let differing = 0;
    for (let i = 0; i < fa.length; i++) if (JSON.stringify(fa[i]) !== JSON.stringify(fb[i])) differing++;
    expect(differing).toBe(0);
    expect(fb).toEqual(fa);
    expect(fm).toEqual(fa);
    // And the same as every record gives, on each store.
    expect(await features(single, 'read')).toEqual(fa);
    expect(await features(sharded, 'read')).toEqual(fa);
    expect(await features(memory, 'read')).toEqual(fa);
    // Not vacuous: velocity and terminal-risk features are non-zero somewhere.
    const v2 = sets.find((s) => s.id === 'transaction_v2') ?? sets.at(-1)!;
    const risk = v2.names.indexOf('TERMINAL_ID_RISK_7DAY_WINDOW');
    expect(fa.some((f) => f.length === v2.names.length && f[risk]! > 0)).toBe(true);
    console.info(
      `cluster equality: ${txs.length} transactions, ${events.length} events (2000 redelivered), ` +
        `${fa.length} feature vectors equal across single, cluster and memory`,
    );
  });

  it('keeps each entity in one slot on the master that owns it and spreads entities over all three masters', async () => {
    const masters = cluster.nodes('master');
    expect(masters).toHaveLength(3);
    const owner = await slotOwners(masters[0]!);
    // The keys the store really wrote, wherever they are, grouped by entity (the hash tag between the braces).
    const byEntity = new Map<string, { key: string; node: string }[]>();
    for (const node of masters) {
      const me = `${node.options.host}:${node.options.port}`;
      for (const key of await scanKeys(node, prefix, Number.POSITIVE_INFINITY)) {
        const tag = /\{([^}]+)\}/.exec(key)![1]!;
        byEntity.set(tag, [...(byEntity.get(tag) ?? []), { key, node: me }]);
      }
    }
    const ids = new Set(txs.flatMap((t) => [`customer:${t.customer_id}`, `terminal:${t.terminal_id}`]));
    expect(new Set(byEntity.keys())).toEqual(ids);
    const perMaster = new Map<string, number>();
    for (const [id, keys] of byEntity) {
      // A log, or a log (its metadata), its tiles and the list of its labels waiting for their transaction.
      const kinds = keys.map((k) => /\}:(tiles|labels|newest):?/.exec(k.key)?.[1] ?? 'log');
      expect(kinds.filter((k) => k !== 'newest').sort(), id).toEqual(
        layout === 'logs' ? ['log'] : ['labels', 'log', 'tiles'],
      );
      for (const { key, node } of keys)
        expect(owner(Number(await masters[0]!.cluster('KEYSLOT', key))), key).toBe(node);
      const node = keys[0]!.node;
      perMaster.set(node, (perMaster.get(node) ?? 0) + 1);
    }
    expect(perMaster.size).toBe(3);
    for (const n of perMaster.values()) expect(n).toBeGreaterThan(ids.size / 6);
    console.info(`cluster spread: ${JSON.stringify(Object.fromEntries(perMaster))} of ${ids.size} entities`);
  });
});

/** slot → "host:port" of the master that serves it, from CLUSTER SLOTS. */
async function slotOwners(node: Redis): Promise<(slot: number) => string> {
  const ranges = (await node.cluster('SLOTS')) as unknown as [
    number,
    number,
    [string, number, ...unknown[]],
  ][];
  return (slot) => {
    const r = ranges.find(([lo, hi]) => slot >= lo && slot <= hi);
    if (!r) throw new Error(`slot ${slot} is not served`);
    return `${r[2][0]}:${r[2][1]}`;
  };
}

async function scanKeys(node: Redis, prefix: string, limit: number): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0' && keys.length < limit);
  return keys;
}

async function deleteByPrefix(node: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  for (let guard = 0; guard < 10_000; guard++) {
    const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    // One key per call: keys of different slots cannot go in one UNLINK on a cluster node.
    for (const k of batch) await node.unlink(k);
    if (cursor === '0') return;
  }
}
