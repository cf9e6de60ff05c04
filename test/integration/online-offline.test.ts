import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../src/adapters/fs/feature-set-files.js';
import { arrayRows } from '../../src/adapters/fs/handbook-csv.js';
import { FeatureWorker } from '../../src/adapters/kafka/feature-worker.js';
import { RedisFeatureStore } from '../../src/adapters/redis/redis-store.js';
import { entityUnion } from '../../src/domain/features/engine.js';
import { DAY_MS } from '../../src/domain/features/time.js';
import type { HandbookRow } from '../../src/domain/history.js';
import { Ingest } from '../../src/usecases/ingest.js';
import { replay } from '../../src/usecases/replay.js';
import { backfillToCsv } from '../../src/wiring/jobs.js';
import { parseFeatures, realTimeLimit } from '../helpers/features.js';
import { generateTransactions, handbookRows } from '../helpers/generate.js';
import { createTopics, readTopic, topicSink, uniqueTopics } from '../helpers/kafka.js';
import { silentLogger } from '../helpers/logger.js';
import { requireKafka, requireRedis, uniqueName } from '../helpers/services.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';

const sets = loadFeatureSets('features');
const set = sets.get('transaction_v2')!;
const v3 = sets.get('transaction_v3')!;
const entities = entityUnion([...sets.values()]);
const retention = { horizonMs: Math.max(set.lookbackMs, v3.lookbackMs) + DAY_MS };

const DAYS = 9;
const START = Date.parse('2018-04-01T00:00:00Z');
// The generator also adds a few transactions days after its range; keep to the range.
// With device ids and IPs (some missing, some shared by many customers), for the v3 features.
const generated = generateTransactions({
  seed: 11,
  days: DAYS,
  customers: 60,
  terminals: 40,
  perDay: 300,
  devices: true,
});
const rows: HandbookRow[] = handbookRows(generated.filter((x) => x.t < START + DAYS * DAY_MS));

describe('online = offline: Kafka → worker → Redis gives the features of the in-memory backfill', () => {
  const topics = uniqueTopics('oo');
  let kafka: Kafka;
  let redis: Redis;
  let store: RedisFeatureStore;
  let worker: FeatureWorker;
  const counts = { applied: 0, duplicate: 0, late: 0, invalid: 0, future: 0 };

  beforeAll(async () => {
    const { brokers } = await requireKafka();
    const { url } = await requireRedis();
    kafka = new Kafka({ clientId: 'online-offline-test', brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await createTopics(admin, topics, 4);
    await admin.disconnect();
    redis = new Redis(url);
    // Terminals (~70 transactions) outgrow a 60-field log and are read as tiles; customers (~45) stay logs.
    store = new RedisFeatureStore(redis, { prefix: uniqueName('oo'), retention, logFields: 60 });
    worker = new FeatureWorker({
      brokers,
      clientId: 'online-offline-worker',
      groupId: uniqueName('group'),
      topics,
      ingest: new Ingest({ entities, store, limit: realTimeLimit }),
      logger: silentLogger(),
      observer: {
        events: (_topic, outcome, n) => {
          counts[outcome] += n;
        },
      },
    });
    await worker.start();
  });

  afterAll(async () => {
    await worker?.stop();
    await redis?.quit();
  });

  it('applies every event exactly once, dead-letters poison, and matches the backfill for the last day', async () => {
    const producer = kafka.producer();
    await producer.connect();
    const sent = await replay(arrayRows(rows), topicSink(producer, topics), { rate: 0 });
    // Redeliveries and poison, as a real topic would carry them.
    await producer.send({
      topic: topics.transactions,
      messages: [
        ...rows.slice(0, 200).map((r) => ({ key: r.customer_id, value: JSON.stringify(transactionJson(r)) })),
        { key: 'x', value: '{not json' },
        { key: 'x', value: JSON.stringify({ transaction_id: 'p1', amount: -5 }) },
        { key: 'x', value: null },
      ],
    });
    await producer.disconnect();

    const events = sent.transactions + sent.labels;
    await waitFor(
      () => counts.applied >= events && counts.duplicate >= 200 && counts.invalid >= 3,
      60_000,
      'the worker',
    );
    // Kafka delivers at least once: a rebalance redelivers the chunks not yet committed, which may add
    // duplicates beyond the 200 sent twice — but never an event applied twice.
    expect({ ...counts, duplicate: Math.min(counts.duplicate, 200) }).toEqual({
      applied: events,
      duplicate: 200,
      late: 0,
      invalid: 3,
      future: 0,
    });

    const dlq = await readTopic(kafka, topics.deadLetter, 3);
    expect(dlq.map((m) => m.headers['x-error'])).toEqual([
      expect.stringMatching(/^invalid JSON/),
      expect.stringMatching(/timestamp|customer_id/),
      'empty message',
    ]);
    expect(dlq[0]!.value?.toString()).toBe('{not json');

    const dir = await tempDir('oo-');
    const lastDay = rows.filter((r) => r.t > rows[rows.length - 1]!.t - DAY_MS);
    expect(lastDay.length).toBeGreaterThan(200);
    const offlineOf = new Map<string, Map<string, number[]>>();
    for (const s of [set, v3]) {
      const output = join(dir, `${s.id}.csv`);
      await backfillToCsv(arrayRows(rows), { set: s, output });
      const offline = parseFeatures(readFileSync(output, 'utf8'), s.names);
      offlineOf.set(s.id, offline);
      let compared = 0;
      for (const r of lastDay) {
        const tx = {
          id: r.id,
          t: r.t,
          amount: r.amount,
          customer_id: r.customer_id,
          terminal_id: r.terminal_id,
          device_id: r.device_id,
          ip: r.ip,
        };
        const online = [...s.compute(tx, await store.summarize(s.summaryQueries(tx)))];
        expect(online, `${s.id} ${r.id}`).toEqual(offline.get(r.id));
        expect([...s.compute(tx, await store.read(s.queries(tx)))], r.id).toEqual(online);
        compared++;
      }
      expect(compared).toBe(lastDay.length);
    }
    // The comparison is not vacuous: terminal risk is non-zero somewhere on the last day, some devices have
    // several customers, some customers a new device, and some transactions no device.
    const at = (s: typeof set, name: string) => s.names.indexOf(name);
    const v2Rows = offlineOf.get(set.id)!;
    const v3Rows = offlineOf.get(v3.id)!;
    expect(lastDay.some((r) => v2Rows.get(r.id)![at(set, 'TERMINAL_ID_RISK_7DAY_WINDOW')]! > 0)).toBe(true);
    expect(lastDay.some((r) => v3Rows.get(r.id)![at(v3, 'DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW')]! > 5)).toBe(
      true,
    );
    expect(lastDay.some((r) => v3Rows.get(r.id)![at(v3, 'CUSTOMER_ID_NEW_DEVICE_30DAY_WINDOW')] === 1)).toBe(
      true,
    );
    expect(lastDay.some((r) => r.device_id === undefined)).toBe(true);
  });
});

function transactionJson(r: HandbookRow) {
  return {
    transaction_id: r.id,
    timestamp: r.datetime,
    customer_id: r.customer_id,
    terminal_id: r.terminal_id,
    amount: r.amount,
    ...(r.device_id === undefined ? {} : { device_id: r.device_id }),
    ...(r.ip === undefined ? {} : { ip: r.ip }),
  };
}
