/**
 * Infrastructure check: the local Apache Kafka broker (scripts/services.sh up kafka) works end to end
 * with kafkajs — admin, producer, consumer group — with no loss, no duplicates and per-key ordering.
 */
import { type Admin, type Consumer, Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireKafka, uniqueName } from '../helpers/services.js';

const PARTITIONS = 4;
const KEYS = 50;
const PER_KEY = 20;
const TOTAL = KEYS * PER_KEY; // 1,000

describe('kafka broker (kafkajs)', () => {
  let kafka: Kafka;
  let admin: Admin | undefined;
  let producer: Producer | undefined;
  let consumer: Consumer | undefined;
  const topic = uniqueName('infra-kafka');
  const groupId = uniqueName('infra-kafka-group');

  beforeAll(async () => {
    const { brokers } = await requireKafka();
    kafka = new Kafka({
      clientId: 'fraudscore-infra-test',
      brokers,
      logLevel: logLevel.WARN,
      retry: { retries: 5 },
    });
    admin = kafka.admin();
    await admin.connect();
  });

  afterAll(async () => {
    await consumer?.disconnect();
    await producer?.disconnect();
    if (admin) {
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  it('creates a topic with 4 partitions', async () => {
    const created = await admin!.createTopics({
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    expect(created).toBe(true);
    const meta = await admin!.fetchTopicMetadata({ topics: [topic] });
    expect(meta.topics[0]?.partitions).toHaveLength(PARTITIONS);
  });

  it('delivers 1,000 keyed messages to a fresh group exactly once, in per-key order', async () => {
    producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
    });
    await producer.connect();

    // Interleave keys so per-key order is meaningful: seq 0 of every key, then seq 1, ...
    const messages = [];
    for (let seq = 0; seq < PER_KEY; seq++) {
      for (let k = 0; k < KEYS; k++) {
        messages.push({ key: `card-${k}`, value: JSON.stringify({ key: `card-${k}`, seq }) });
      }
    }
    expect(messages).toHaveLength(TOTAL);
    // acks=-1, in chunks of 100 sent one after another so the log order is the send order.
    for (let i = 0; i < messages.length; i += 100) {
      await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 100) });
    }

    consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });

    const received: { key: string; seq: number; partition: number; offset: string }[] = [];
    let mismatched = 0;
    let resolveAll!: () => void;
    const allReceived = new Promise<void>((resolve) => {
      resolveAll = resolve;
    });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const body = JSON.parse(message.value!.toString('utf8')) as { key: string; seq: number };
        received.push({
          key: message.key?.toString('utf8') ?? '',
          seq: body.seq,
          partition,
          offset: message.offset,
        });
        if (body.key !== message.key?.toString('utf8')) mismatched += 1;
        if (received.length === TOTAL) resolveAll();
      },
    });

    await Promise.race([
      allReceived,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`only ${received.length}/${TOTAL} messages after 60 s`)), 60_000),
      ),
    ]);
    // Give a duplicate (e.g. a redelivery after a rebalance) a moment to show up.
    await new Promise((r) => setTimeout(r, 1_000));

    expect(received).toHaveLength(TOTAL);
    expect(mismatched).toBe(0);
    const ids = new Set(received.map((m) => `${m.key}#${m.seq}`));
    expect(ids.size).toBe(TOTAL);

    const byKey = new Map<string, { seqs: number[]; partitions: Set<number> }>();
    for (const m of received) {
      const entry = byKey.get(m.key) ?? { seqs: [], partitions: new Set<number>() };
      entry.seqs.push(m.seq);
      entry.partitions.add(m.partition);
      byKey.set(m.key, entry);
    }
    expect(byKey.size).toBe(KEYS);
    const usedPartitions = new Set<number>();
    for (const [, { seqs, partitions }] of byKey) {
      expect(seqs).toEqual(Array.from({ length: PER_KEY }, (_, i) => i)); // in order, none missing
      expect(partitions.size).toBe(1); // one key -> one partition
      usedPartitions.add([...partitions][0]!);
    }
    expect(usedPartitions.size).toBeGreaterThan(1); // 50 keys spread over the 4 partitions

    // The committed offsets of the group cover all messages once the consumer stops.
    await consumer.stop();
    const offsets = await admin!.fetchOffsets({ groupId, topics: [topic] });
    const committed = offsets[0]!.partitions.reduce((sum, p) => sum + Number(p.offset), 0);
    expect(committed).toBe(TOTAL);
  });
});
