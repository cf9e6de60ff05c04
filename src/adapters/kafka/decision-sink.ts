import { Kafka, logLevel, type Producer } from 'kafkajs';
import type { DecisionRecord } from '../../domain/scoring/decision-record.js';
import type { DecisionSink } from '../../ports/decision-sink.js';
import type { Logger } from '../../ports/logger.js';
import { ensureTopics } from './topics.js';

/**
 * Publishes audit records of decisions to a topic (key: transaction id), off the request path: records are
 * queued and sent in the background; a broker outage drops them with a warning rather than slowing scoring
 * (the log keeps every record regardless).
 */
export class KafkaDecisionSink implements DecisionSink {
  private readonly producer: Producer;
  private queue: DecisionRecord[] = [];
  private sending = false;
  private connected: Promise<void>;
  private dropped = 0;

  constructor(
    brokers: readonly string[],
    clientId: string,
    private readonly topic: string,
    private readonly logger: Logger,
    private readonly maxQueue = 50_000,
  ) {
    const kafka = new Kafka({ clientId, brokers: [...brokers], logLevel: logLevel.NOTHING });
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    this.producer = producer;
    this.connected = (async () => {
      const admin = kafka.admin();
      await admin.connect();
      try {
        await ensureTopics(admin, [{ topic, numPartitions: -1 }]);
      } finally {
        await admin.disconnect();
      }
      await producer.connect();
    })();
    this.connected.catch((err: unknown) => logger.warn({ err }, 'decisions producer could not connect'));
  }

  publish(records: readonly DecisionRecord[]): void {
    const room = this.maxQueue - this.queue.length;
    if (room < records.length) this.dropped += records.length - Math.max(0, room);
    this.queue.push(...records.slice(0, Math.max(0, room)));
    if (!this.sending) void this.drain();
  }

  private async drain(): Promise<void> {
    this.sending = true;
    try {
      await this.connected;
      while (this.queue.length) {
        const batch = this.queue.splice(0, 1000);
        await this.producer.send({
          topic: this.topic,
          messages: batch.map((r) => ({ key: r.transaction_id, value: JSON.stringify(r) })),
        });
      }
    } catch (err) {
      this.dropped += this.queue.length;
      this.queue = [];
      this.logger.warn(
        { err, dropped: this.dropped },
        'decisions topic unavailable; audit records kept in the log only',
      );
    } finally {
      this.sending = false;
    }
  }

  async close(): Promise<void> {
    if (this.queue.length) await this.drain();
    await this.producer.disconnect().catch(() => {});
  }
}
