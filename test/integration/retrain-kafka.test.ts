import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { beforeAll, describe, expect, it } from 'vitest';
import { forEachHandbookRow } from '../../src/adapters/fs/handbook-csv.js';
import type { HandbookRow } from '../../src/domain/history.js';
import { exportKafkaHistory, replayFilesToKafka, retrainFromKafka } from '../../src/wiring/jobs.js';
import { createTopics, uniqueTopics } from '../helpers/kafka.js';
import { silentLogger } from '../helpers/logger.js';
import { trainingModule } from '../helpers/python.js';
import { testRetrain } from '../helpers/retrain.js';
import { requireKafka } from '../helpers/services.js';
import { tempDir } from '../helpers/temp-dir.js';

const T0 = Date.parse('2018-04-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const HOUR = 3_600_000;

/**
 * Issue 19: `fraudscore retrain --from-kafka`. The topics' history as a handbook file (corrections, late labels,
 * bad messages, labels of unknown transactions), then one small retrain from topics a replay filled.
 */
describe('retrain from the Kafka topics', () => {
  let brokers: string[];
  let kafka: Kafka;
  beforeAll(async () => {
    brokers = (await requireKafka()).brokers;
    kafka = new Kafka({ clientId: 'retrain-kafka-test', brokers, logLevel: logLevel.NOTHING });
  });

  const read = async (path: string) => {
    const rows: HandbookRow[] = [];
    await forEachHandbookRow([path], (r) => rows.push(r));
    return rows;
  };

  it('exports the topics up to their watermarks: each transaction with its last label', async () => {
    const topics = uniqueTopics('retrain-export');
    const admin = kafka.admin();
    await admin.connect();
    await createTopics(admin, topics, 2);
    await admin.disconnect();
    const dir = await tempDir('retrain-kafka-');

    // Empty topics: nothing to read, and the read still ends.
    const empty = await exportKafkaHistory({
      brokers,
      topics,
      output: join(dir, 'empty.csv'),
      logger: silentLogger(),
    });
    expect(empty).toMatchObject({ rows: 0, transactions: 0, labels: 0 });

    const tx = (i: number, extra = {}) => ({
      transaction_id: `tx${i}`,
      timestamp: iso(T0 + i * HOUR),
      customer_id: `c${i % 3}`,
      terminal_id: `t${i % 5}`,
      amount: 10 + i,
      ...extra,
    });
    const label = (i: number, is_fraud: boolean, labeledAt?: number) => ({
      transaction_id: `tx${i}`,
      customer_id: `c${i % 3}`,
      terminal_id: `t${i % 5}`,
      transaction_timestamp: iso(T0 + i * HOUR),
      is_fraud,
      ...(labeledAt === undefined ? {} : { labeled_at: iso(labeledAt) }),
    });
    const json = (v: unknown) => JSON.stringify(v);
    const producer = kafka.producer();
    await producer.connect();
    try {
      // Partition 1 of the labels topic stays empty; transactions arrive out of event-time order.
      await producer.send({
        topic: topics.transactions,
        messages: [
          { partition: 0, value: json(tx(2)) },
          { partition: 0, value: json(tx(0, { device_id: 'dev-a', ip: '10.1.2.3' })) },
          { partition: 1, value: json(tx(1)) },
          { partition: 1, value: '{"transaction_id": "broken"' },
          { partition: 1, value: json(tx(3)) },
          { partition: 0, value: json(tx(4)) },
        ],
      });
      await producer.send({
        topic: topics.labels,
        messages: [
          { partition: 0, value: json(label(1, true)) },
          { partition: 0, value: json(label(2, true)) },
          { partition: 0, value: json(label(2, false)) }, // a correction: tx2 is no fraud after all
          { partition: 0, value: json(label(3, false)) },
          { partition: 0, value: json(label(3, true, T0 + 3 * HOUR + 20 * 86_400_000)) }, // known 20 days later
          { partition: 0, value: json({ ...label(4, true), is_fraud: 'yes' }) },
          { partition: 0, value: json({ ...label(9, true), transaction_id: 'ghost' }) },
        ],
      });
    } finally {
      await producer.disconnect();
    }

    const out = join(dir, 'history.csv');
    const exported = await exportKafkaHistory({ brokers, topics, output: out, logger: silentLogger() });
    expect(exported).toMatchObject({
      rows: 5,
      transactions: 5,
      labels: 6,
      invalid: { transactions: 1, labels: 1 },
      duplicateTransactions: 0,
      unknownLabels: 1,
      supersededLabels: 2,
      unwritable: 0,
      incomplete: [],
    });
    expect(exported.offsets[topics.transactions]).toEqual([
      { partition: 0, from: '0', to: '3' },
      { partition: 1, from: '0', to: '3' },
    ]);
    expect(exported.offsets[topics.labels]).toEqual([
      { partition: 0, from: '0', to: '7' },
      { partition: 1, from: '0', to: '0' },
    ]);
    expect((await readFile(out, 'utf8')).split('\n')[0]).toBe(
      'TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD,LABELED_AT,DEVICE_ID,IP',
    );
    const row = (i: number, fraud: boolean, extra = {}) => ({
      id: `tx${i}`,
      datetime: iso(T0 + i * HOUR)
        .slice(0, 19)
        .replace('T', ' '),
      t: T0 + i * HOUR,
      customer_id: `c${i % 3}`,
      terminal_id: `t${i % 5}`,
      amount: 10 + i,
      fraud,
      ...extra,
    });
    expect(await read(out)).toEqual([
      row(0, false, { device_id: 'dev-a', ip: '10.1.2.3' }),
      row(1, true),
      row(2, false),
      row(3, true, { labeledAt: T0 + 3 * HOUR + 20 * 86_400_000 }),
      row(4, false),
    ]);
  }, 60_000);

  it('reads a snapshot: ends at the watermarks taken at the start while producers go on', async () => {
    const topics = uniqueTopics('retrain-snapshot');
    const admin = kafka.admin();
    await admin.connect();
    await createTopics(admin, topics, 3);
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    let n = 0;
    const batch = () =>
      producer.send({
        topic: topics.transactions,
        messages: Array.from({ length: 20 }, () => {
          n++;
          const value = {
            transaction_id: `tx${n}`,
            timestamp: iso(T0 + n * 1000),
            customer_id: `c${n % 7}`,
            terminal_id: 't1',
            amount: 1,
          };
          return { key: value.customer_id, value: JSON.stringify(value) };
        }),
      });
    try {
      for (let i = 0; i < 10; i++) await batch();
      let exporting = true;
      const exported = exportKafkaHistory({
        brokers,
        topics,
        output: join(await tempDir('retrain-kafka-'), 'h.csv'),
        logger: silentLogger(),
      }).finally(() => {
        exporting = false;
      });
      while (exporting) await batch();
      const result = await exported;
      const snapshot = result.offsets[topics.transactions]!;
      const total = snapshot.reduce((sum, p) => sum + Number(p.to) - Number(p.from), 0);
      expect(total).toBeGreaterThanOrEqual(200);
      expect(result).toMatchObject({ transactions: total, rows: total, incomplete: [] });
      expect(n).toBeGreaterThan(total); // the producer went on after the snapshot
    } finally {
      await producer.disconnect();
    }
  }, 60_000);

  it('retrains from the topics: version 1, eligible, the card naming the topics and offsets', async () => {
    const dir = await tempDir('retrain-kafka-');
    const raw = join(dir, 'raw.csv');
    await trainingModule('generate', [
      ...['--days', '30', '--customers', '200', '--terminals', '400', '--seed', '5', '--output', raw],
    ]);
    const topics = uniqueTopics('retrain-from-kafka');
    await replayFilesToKafka([raw], { brokers, topics, partitions: 2, rate: 0 });
    const models = join(dir, 'models');
    const result = await retrainFromKafka({
      brokers,
      topics,
      ...testRetrain(),
      until: '2018-04-28',
      modelDir: models,
      gate: { rules: [], resamples: 50, seed: 7, confidence: 0.95 },
    });
    expect(result).toMatchObject({ version: '1', verdict: 'eligible' });
    const card = JSON.parse(await readFile(join(models, 'fraudscore', '1', 'manifest.json'), 'utf8')).card;
    expect(card.data.history_to).toBe('2018-04-28');
    expect(card.data.fingerprint.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(card.data.fingerprint.source).toMatchObject({
      kind: 'kafka',
      topics: { transactions: topics.transactions, labels: topics.labels },
      invalid: { transactions: 0, labels: 0 },
      incomplete: [],
    });
    expect(card.data.fingerprint.source.offsets[topics.transactions]).toHaveLength(2);
  }, 180_000);
});
