import type { Admin, Kafka, Producer } from 'kafkajs';
import { ensureTopics } from '../../src/adapters/kafka/topics.js';
import type { EventSink } from '../../src/ports/event-sink.js';
import { uniqueName } from './services.js';
import { sleep, waitFor } from './wait.js';

export interface WorkerTopics {
  transactions: string;
  labels: string;
  deadLetter: string;
}

/** Fresh names for a worker's three topics, so test files sharing the broker never meet. */
export function uniqueTopics(tag: string): WorkerTopics {
  return {
    transactions: uniqueName(`${tag}-tx`),
    labels: uniqueName(`${tag}-labels`),
    deadLetter: uniqueName(`${tag}-dlq`),
  };
}

/** The event topics with `partitions` partitions each; the dead-letter topic with one. */
export async function createTopics(admin: Admin, topics: WorkerTopics, partitions: number): Promise<void> {
  await ensureTopics(admin, [
    { topic: topics.transactions, numPartitions: partitions },
    { topic: topics.labels, numPartitions: partitions },
    { topic: topics.deadLetter, numPartitions: 1 },
  ]);
}

/** A replay sink that produces each batch to its topic. */
export function topicSink(producer: Producer, topics: WorkerTopics): EventSink {
  return {
    send: async (which, messages) =>
      void (await producer.send({ topic: topics[which], messages: [...messages] })),
  };
}

export interface ReadMessage {
  key: string;
  value: Buffer | null;
  headers: Record<string, string>;
}

/**
 * Reads `topic` from the beginning until `n` messages have arrived, then goes on listening `settleMs` more
 * so that a test can see messages beyond the `n` it expects.
 */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  n: number,
  settleMs = 0,
): Promise<ReadMessage[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('dlq-reader') });
  const got: ReadMessage[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      got.push({
        key: message.key?.toString() ?? '',
        value: message.value,
        headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])),
      });
    },
  });
  try {
    await waitFor(() => got.length >= n, 30_000, `${n} messages on ${topic}`);
    await sleep(settleMs);
  } finally {
    await consumer.disconnect();
  }
  return got;
}
