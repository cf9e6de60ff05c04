/**
 * Issue 9 (poison messages): valid events interleaved with poison on both topics — malformed JSON, schema
 * violations, a ~900 KB message, binary garbage, null and empty values, JSON that is not an object, an event on
 * the wrong topic. Each poison message lands in the dead-letter topic with its original key and bytes and an
 * `x-error` header naming the reason (plus its source topic and offset); consumption goes on, and the valid
 * events give exactly the features of the in-memory backfill.
 *
 * Issue 15 (event-time sanity): events of real customers and terminals dated beyond MAX_EVENT_FUTURE_MS of the
 * worker's clock (a fake one, set after the generated history) — a transaction and a label dated 2081, and one
 * a millisecond past the bound — are dead-lettered with `x-reason: future` and counted as `future`; since
 * they never reach the store, the features still equal the backfill's (a 2081 event applied would have
 * trimmed those entities' history and made their later events late).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { type Admin, Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../src/adapters/fs/feature-set-files.js';
import { FeatureWorker } from '../../src/adapters/kafka/feature-worker.js';
import { RedisFeatureStore } from '../../src/adapters/redis/redis-store.js';
import { entityUnion } from '../../src/domain/features/engine.js';
import { Ingest } from '../../src/usecases/ingest.js';
import { labelOf, transactionOf } from '../../src/usecases/replay.js';
import { expectSameFeatures, retentionFor } from '../helpers/features.js';
import { type GeneratedRow, generateTransactions, handbookRows } from '../helpers/generate.js';
import { createTopics, readTopic, uniqueTopics } from '../helpers/kafka.js';
import { silentLogger } from '../helpers/logger.js';
import { deleteByPrefix } from '../helpers/redis.js';
import { requireKafka, requireRedis, uniqueName } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const sets = [...loadFeatureSets('features').values()];
const entities = entityUnion(sets);
const retention = retentionFor(sets);
/** The worker's processing clock: after the generated history (4 days from 2018-04-01, some events a week later). */
const NOW = Date.parse('2018-04-20T00:00:00Z');
const MAX_FUTURE_MS = 600_000;
const limit = { clock: { now: () => NOW, monotonic: () => 0 }, maxFutureMs: MAX_FUTURE_MS };
const txs = handbookRows(
  generateTransactions({ seed: 41, days: 4, customers: 50, terminals: 30, perDay: 250 }),
);
if (Math.max(...txs.map((r) => r.t)) >= NOW) throw new Error('the generated history must lie before NOW');

interface Poison {
  readonly key: string;
  readonly topic: 'transactions' | 'labels';
  readonly value: Buffer | null;
  readonly reason: RegExp;
  /** The `x-reason` header: the schema refused it, or it is dated too far ahead of the clock. */
  readonly outcome: 'invalid' | 'future';
}

const valid = {
  transaction_id: 'p',
  timestamp: '2018-04-02T10:00:00Z',
  customer_id: 'C1',
  terminal_id: 'T1',
  amount: 10,
};
const validLabel = {
  transaction_id: 'p',
  customer_id: 'C1',
  terminal_id: 'T1',
  transaction_timestamp: '2018-04-02T10:00:00Z',
  is_fraud: true,
};
const b = (x: unknown) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x));

function poisons(): Poison[] {
  const future = (p: Omit<Poison, 'key' | 'outcome'>) => ({ ...p, outcome: 'future' as const });
  const list: (Omit<Poison, 'key' | 'outcome'> & { outcome?: 'future' })[] = [
    { topic: 'transactions', value: b('{"transaction_id": "p1",'), reason: /^invalid JSON/ },
    { topic: 'transactions', value: b({ ...valid, amount: -5 }), reason: /^amount: / },
    { topic: 'transactions', value: b({ ...valid, amount: 'NaN' }), reason: /^amount: / },
    { topic: 'transactions', value: b({ ...valid, customer_id: undefined }), reason: /^customer_id: / },
    {
      topic: 'transactions',
      value: b({ ...valid, timestamp: '2018-02-30T00:00:00Z' }),
      reason: /^timestamp: /,
    },
    {
      topic: 'transactions',
      value: b({ ...valid, transaction_id: 'x'.repeat(900_000) }),
      reason: /^transaction_id: /,
    },
    {
      topic: 'transactions',
      value: Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), randomBytes(2000)]),
      reason: /^invalid JSON/,
    },
    { topic: 'transactions', value: null, reason: /^empty message$/ },
    { topic: 'transactions', value: Buffer.alloc(0), reason: /^empty message$/ },
    { topic: 'transactions', value: b('42'), reason: /^\(root\): .*object/ },
    { topic: 'transactions', value: b(validLabel), reason: /timestamp|amount/ },
    { topic: 'labels', value: b('{{{'), reason: /^invalid JSON/ },
    { topic: 'labels', value: b({ ...validLabel, is_fraud: 'yes' }), reason: /^is_fraud: / },
    { topic: 'labels', value: b({ ...validLabel, source: 's'.repeat(900_000) }), reason: /^source: / },
    { topic: 'labels', value: randomBytes(5000).fill(0x80, 0, 1), reason: /^invalid JSON/ },
    { topic: 'labels', value: null, reason: /^empty message$/ },
    { topic: 'labels', value: b(valid), reason: /transaction_timestamp|is_fraud/ },
    { topic: 'labels', value: b([validLabel]), reason: /^\(root\): .*object/ },
    future({
      topic: 'transactions',
      value: b({ ...valid, transaction_id: 'f2081', timestamp: '2081-04-02T10:00:00Z' }),
      reason:
        /^timestamp: must not be more than 600000 ms after the processing time \(2018-04-20T00:00:00.000Z\)$/,
    }),
    future({
      topic: 'transactions',
      value: b({
        ...valid,
        transaction_id: 'f-edge',
        customer_id: 'C2',
        terminal_id: 'T2',
        timestamp: new Date(NOW + MAX_FUTURE_MS + 1).toISOString(),
      }),
      reason: /^timestamp: /,
    }),
    future({
      topic: 'labels',
      value: b({ ...validLabel, transaction_id: 'f2081', transaction_timestamp: '2081-04-02T10:00:00Z' }),
      reason: /^transaction_timestamp: must not be more than 600000 ms/,
    }),
  ];
  return list.map((p, i) => ({ outcome: 'invalid', ...p, key: `poison-${i}` }));
}

describe('poison messages go to the dead-letter topic and consumption goes on', () => {
  const topics = uniqueTopics('pz');
  const prefix = uniqueName('pz');
  let kafka: Kafka;
  let admin: Admin;
  let redis: Redis;
  let store: RedisFeatureStore;
  let worker: FeatureWorker;
  const counts = { applied: 0, duplicate: 0, late: 0, invalid: 0, future: 0 };
  const deadLettered: Record<string, number> = {};

  beforeAll(async () => {
    const { brokers } = await requireKafka();
    const { url } = await requireRedis();
    kafka = new Kafka({ clientId: 'poison-test', brokers, logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    await createTopics(admin, topics, 2);
    redis = new Redis(url);
    store = new RedisFeatureStore(redis, { prefix, retention, limit });
    worker = new FeatureWorker({
      brokers,
      clientId: 'poison-worker',
      groupId: uniqueName('pz-group'),
      topics,
      ingest: new Ingest({ entities, store, limit }),
      logger: silentLogger(),
      // Small chunks: poison and valid messages share store round trips and commits in many combinations.
      chunkSize: 50,
      observer: {
        events: (_topic, outcome, n) => {
          counts[outcome] += n;
        },
        deadLetter: (topic) => {
          deadLettered[topic] = (deadLettered[topic] ?? 0) + 1;
        },
      },
    });
    await worker.start();
  });

  afterAll(async () => {
    await worker?.stop();
    await admin?.deleteTopics({ topics: Object.values(topics) }).catch(() => {});
    await admin?.disconnect();
    if (redis) {
      await deleteByPrefix(redis, prefix);
      await redis.quit();
    }
  });

  it('dead-letters each poison message with its reason and bytes, and applies every valid event', async () => {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const bad = poisons();
    const half = Math.floor(txs.length / 2);
    // Wave 1: the first half of the valid events with the poison spread through them; wave 2: the rest, after.
    const wave1 = await send(producer, topics, txs.slice(0, half), bad);
    const wave2 = await send(producer, topics, txs.slice(half), []);
    await producer.disconnect();
    const validCount = wave1.valid + wave2.valid;

    await waitFor(
      () =>
        counts.applied + counts.duplicate + counts.late + counts.invalid + counts.future >=
        validCount + bad.length,
      60_000,
      'the worker',
    );
    const futures = bad.filter((p) => p.outcome === 'future').length;
    expect(futures).toBe(3);
    expect(counts).toEqual({
      applied: validCount,
      duplicate: 0,
      late: 0,
      invalid: bad.length - futures,
      future: futures,
    });
    expect(deadLettered).toEqual({
      [topics.transactions]: bad.filter((p) => p.topic === 'transactions').length,
      [topics.labels]: bad.filter((p) => p.topic === 'labels').length,
    });

    // Listening 500 ms more: anything beyond bad.length would be a poison message dead-lettered twice.
    const dlq = await readTopic(kafka, topics.deadLetter, bad.length, 500);
    expect(dlq).toHaveLength(bad.length);
    const byKey = new Map(dlq.map((m) => [m.key, m]));
    for (const p of bad) {
      const m = byKey.get(p.key);
      expect(m, p.key).toBeDefined();
      expect(m!.headers['x-error'], p.key).toMatch(p.reason);
      expect(m!.headers['x-reason'], p.key).toBe(p.outcome);
      expect(m!.headers['x-source-topic']).toBe(topics[p.topic]);
      expect(m!.headers['x-source-offset']).toMatch(/^\d+$/);
      expect(m!.headers['x-source-partition']).toMatch(/^\d+$/);
      // The original bytes, byte for byte (a null value stays null; an empty one may come back as null).
      if (p.value === null || p.value.length === 0) expect(m!.value?.length ?? 0).toBe(0);
      else expect(Buffer.compare(m!.value!, p.value), p.key).toBe(0);
    }

    // The valid events give the features of the in-memory store fed the same valid events.
    const compared = await expectSameFeatures(store, txs, sets, entities, 200);
    expect(compared).toBe(txs.length * sets.length);
    console.info(
      `poison: ${bad.length} poison messages (${bad.filter((p) => p.topic === 'labels').length} on labels) among ` +
        `${validCount} valid events; all dead-lettered with reason and bytes; ${compared} feature vectors equal`,
    );
  }, 120_000);
});

// ------------------------------------------------------------------------------------------------ helpers

/** Publishes valid transactions (and their labels) keyed by customer, with the poison spread evenly among them. */
async function send(
  producer: Producer,
  topics: { transactions: string; labels: string },
  rows: readonly GeneratedRow[],
  bad: readonly Poison[],
): Promise<{ valid: number }> {
  const out = {
    transactions: [] as { key: string; value: Buffer | null }[],
    labels: [] as { key: string; value: Buffer | null }[],
  };
  const every = Math.max(1, Math.floor(rows.length / (bad.length + 1)));
  let next = 0;
  let valid = 0;
  rows.forEach((r, i) => {
    out.transactions.push({ key: r.customer_id, value: b(transactionOf(r)) });
    valid++;
    if (r.fraud) {
      out.labels.push({ key: r.customer_id, value: b(labelOf(r)) });
      valid++;
    }
    if (i % every === every - 1 && next < bad.length) {
      const p = bad[next++]!;
      out[p.topic].push({ key: p.key, value: p.value });
    }
  });
  while (next < bad.length) {
    const p = bad[next++]!;
    out[p.topic].push({ key: p.key, value: p.value });
  }
  // Produce requests under ~512 KB (the ~900 KB messages go alone): a batch over the broker's limit is refused whole.
  for (const which of ['transactions', 'labels'] as const) {
    let batch: (typeof out)['transactions'] = [];
    let bytes = 0;
    const flush = async () => {
      if (batch.length) await producer.send({ topic: topics[which], messages: batch });
      batch = [];
      bytes = 0;
    };
    for (const m of out[which]) {
      const size = m.value?.length ?? 0;
      if (bytes + size > 512 * 1024) await flush();
      batch.push(m);
      bytes += size;
    }
    await flush();
  }
  return { valid };
}
