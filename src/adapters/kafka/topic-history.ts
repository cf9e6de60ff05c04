import { randomBytes } from 'node:crypto';
import { type Admin, Kafka, logLevel } from 'kafkajs';
import type { Label, Transaction } from '../../domain/events.js';
import type { Arrived } from '../../domain/history.js';
import { decodeMessage, type EventKind } from '../../domain/ingest.js';
import { describeProblems } from '../../domain/problems.js';
import type { Logger } from '../../ports/logger.js';
import { kafkaLogger } from './feature-worker.js';

/** One partition's snapshot: offsets `from` (earliest retained) up to `to` (the high watermark, excluded). */
export interface PartitionRange {
  readonly partition: number;
  readonly from: string;
  readonly to: string;
}

export interface TopicHistory {
  readonly transactions: Arrived<Transaction>[];
  readonly labels: Arrived<Label>[];
  /** Messages the worker's schemas refuse (no JSON, wrong shape): counted and skipped. */
  readonly invalid: { readonly transactions: number; readonly labels: number };
  /** What was read, per topic name. */
  readonly offsets: Record<string, readonly PartitionRange[]>;
  /** Partitions that stopped short of their watermark (nothing more came for `idleMs`: e.g. transaction markers). */
  readonly incomplete: readonly { topic: string; partition: number; next: number; to: number }[];
}

export interface TopicHistoryOptions {
  readonly brokers: readonly string[];
  readonly topics: { readonly transactions: string; readonly labels: string };
  readonly logger: Logger;
  readonly clientId?: string;
  /** How long a partition short of its watermark may go without a message before the read ends (default 15 s). */
  readonly idleMs?: number;
}

/**
 * Reads the transactions and labels topics from the earliest retained offset up to the high watermarks taken at
 * the start — a snapshot: what is produced meanwhile is not read — and validates each message with the worker's
 * schemas. The consumer group is a throwaway one that never commits, so no consumer's position moves. Everything
 * read is held in memory: a history too big for that is exported to files first and retrained with --input.
 */
export async function readTopicHistory(o: TopicHistoryOptions): Promise<TopicHistory> {
  const kafka = new Kafka({
    clientId: o.clientId ?? 'fraudscore-retrain',
    brokers: [...o.brokers],
    logLevel: logLevel.WARN,
    logCreator: kafkaLogger(o.logger),
  });
  const kinds = new Map<string, EventKind>([
    [o.topics.transactions, 'transaction'],
    [o.topics.labels, 'label'],
  ]);
  const admin = kafka.admin();
  await admin.connect();
  let offsets: Record<string, PartitionRange[]>;
  try {
    offsets = Object.fromEntries(
      await Promise.all([...kinds.keys()].map(async (t) => [t, await snapshot(admin, t)] as const)),
    );
  } finally {
    await admin.disconnect();
  }

  const history = {
    transactions: [] as Arrived<Transaction>[],
    labels: [] as Arrived<Label>[],
    invalid: { transactions: 0, labels: 0 },
  };
  /** Next offset to read, per `topic/partition` still short of its watermark. */
  const pending = new Map<string, { topic: string; partition: number; next: number; to: number }>();
  for (const [topic, ranges] of Object.entries(offsets))
    for (const r of ranges)
      if (Number(r.to) > Number(r.from))
        pending.set(`${topic}/${r.partition}`, {
          topic,
          partition: r.partition,
          next: Number(r.from),
          to: Number(r.to),
        });
  if (pending.size === 0) return { ...history, offsets, incomplete: [] };

  const consumer = kafka.consumer({
    groupId: `fraudscore-retrain-${randomBytes(6).toString('hex')}`,
    allowAutoTopicCreation: false,
  });
  const idleMs = o.idleMs ?? 15_000;
  let lastProgress = Date.now();
  let joined = false;
  let finish!: () => void;
  const done = new Promise<void>((r) => {
    finish = r;
  });
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined = true;
    lastProgress = Date.now();
  });
  const crashed = new Promise<never>((_, reject) =>
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) reject(e.payload.error);
    }),
  );
  crashed.catch(() => undefined);
  const reported = { transaction: 0, label: 0 };
  await consumer.connect();
  const idle = setInterval(() => {
    if (joined && Date.now() - lastProgress > idleMs) finish();
  }, 500);
  try {
    await consumer.subscribe({ topics: [...kinds.keys()], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const p = pending.get(`${batch.topic}/${batch.partition}`);
        if (!p) return;
        const kind = kinds.get(batch.topic)!;
        for (const m of batch.messages) {
          const offset = Number(m.offset);
          if (offset < p.next || offset >= p.to) continue;
          p.next = offset + 1;
          const v = decodeMessage(kind, m.value);
          if (!v.ok) {
            history.invalid[kind === 'transaction' ? 'transactions' : 'labels']++;
            if (reported[kind]++ < 10)
              o.logger.warn(
                { topic: batch.topic, partition: batch.partition, offset: m.offset },
                `retrain: skipping an invalid ${kind}: ${describeProblems(v.problems)}`,
              );
            continue;
          }
          const at = { partition: batch.partition, offset, timestamp: Number(m.timestamp) };
          if (kind === 'transaction') history.transactions.push({ event: v.event as Transaction, at });
          else history.labels.push({ event: v.event as Label, at });
        }
        lastProgress = Date.now();
        if (p.next >= p.to) pending.delete(`${batch.topic}/${batch.partition}`);
        if (pending.size === 0) finish();
      },
    });
    await Promise.race([done, crashed]);
  } finally {
    clearInterval(idle);
    await consumer.disconnect();
  }
  const incomplete = [...pending.values()];
  if (incomplete.length)
    o.logger.warn(
      { incomplete },
      `retrain: ${incomplete.length} partition(s) ended short of their snapshot watermark (nothing came for ${idleMs} ms)`,
    );
  return { ...history, offsets, incomplete };
}

async function snapshot(admin: Admin, topic: string): Promise<PartitionRange[]> {
  const existing = await admin.listTopics();
  if (!existing.includes(topic)) throw new Error(`Kafka topic ${topic} does not exist`);
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets
    .map((p) => ({ partition: p.partition, from: p.low, to: p.high }))
    .sort((a, b) => a.partition - b.partition);
}
