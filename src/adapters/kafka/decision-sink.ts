import { Kafka, logLevel, type Producer } from 'kafkajs';
import type { DecisionRecord } from '../../domain/scoring/decision-record.js';
import type { DecisionSink } from '../../ports/decision-sink.js';
import type { Logger } from '../../ports/logger.js';
import type { TraceContext, Tracer } from '../../ports/tracer.js';
import { ensureTopics } from './topics.js';

export interface KafkaDecisionSinkOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly topic: string;
  readonly logger: Logger;
  /** Records held while the broker is away; beyond it the newest are dropped, counted and logged. */
  readonly maxQueue?: number;
  /** Told how many records were dropped each time some are (fraudscore_decisions_dropped_total). */
  readonly onDropped?: (n: number) => void;
  /** Backoff between attempts while the broker is away (ms). */
  readonly retryDelayMs?: { readonly min: number; readonly max: number };
  /** Given when tracing is on: each record carries its decision's W3C trace context in its headers. */
  readonly tracer?: Tracer;
}

interface Queued {
  readonly record: DecisionRecord;
  /** `traceparent` (and `tracestate`), shared by the records of one request. */
  readonly headers: Record<string, string> | undefined;
}

/**
 * Publishes audit records of decisions to a topic (key: transaction id; the W3C `traceparent` header when traced),
 * off the request path, through an idempotent producer: a retried send never writes a record twice. While the
 * broker is away records wait in a bounded queue and sending is retried with backoff; what does not fit is dropped,
 * counted and logged — never silently lost (the log keeps every record regardless).
 */
export class KafkaDecisionSink implements DecisionSink {
  private readonly producer: Producer;
  private readonly kafka: Kafka;
  private queue: Queued[] = [];
  private draining: Promise<void> | undefined;
  private connected = false;
  private closed = false;

  constructor(private readonly o: KafkaDecisionSinkOptions) {
    this.kafka = new Kafka({ clientId: o.clientId, brokers: [...o.brokers], logLevel: logLevel.NOTHING });
    this.producer = this.kafka.producer({
      allowAutoTopicCreation: true,
      idempotent: true,
      maxInFlightRequests: 1,
      retry: { retries: 5 },
    });
  }

  publish(records: readonly DecisionRecord[], trace?: TraceContext): void {
    const room = (this.o.maxQueue ?? 50_000) - this.queue.length;
    const kept = Math.max(0, Math.min(room, records.length));
    let headers: Record<string, string> | undefined;
    if (trace && this.o.tracer && kept > 0) {
      headers = {};
      this.o.tracer.inject(trace, headers);
    }
    for (let i = 0; i < kept; i++) this.queue.push({ record: records[i]!, headers });
    if (kept < records.length) this.drop(records.length - kept, 'queue full');
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
    });
  }

  /**
   * Sends what is queued, waiting for the broker up to `graceMs` (shutdown must not hang on an absent broker),
   * then counts what is left as dropped and disconnects.
   */
  async close(graceMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.draining,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
    this.closed = true;
    if (this.queue.length) this.drop(this.queue.splice(0).length, 'closing with the broker away');
    await this.producer.disconnect().catch(() => {});
  }

  private async drain(): Promise<void> {
    const { min, max } = this.o.retryDelayMs ?? { min: 100, max: 5_000 };
    for (let attempt = 0; this.queue.length && !this.closed; ) {
      try {
        if (!this.connected) await this.connect();
        const batch = this.queue.slice(0, 1000);
        await this.producer.send({
          topic: this.o.topic,
          messages: batch.map(({ record, headers }) => ({
            key: record.transaction_id,
            value: JSON.stringify(record),
            ...(headers ? { headers } : {}),
          })),
        });
        this.queue.splice(0, batch.length);
        attempt = 0;
      } catch (err) {
        if (attempt === 0)
          this.o.logger.warn(
            { err, queued: this.queue.length },
            'decisions topic unavailable; holding audit records and retrying',
          );
        await new Promise((r) => setTimeout(r, Math.min(max, min * 2 ** attempt++)).unref());
      }
    }
  }

  private async connect(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await ensureTopics(admin, [{ topic: this.o.topic, numPartitions: -1 }]);
    } finally {
      await admin.disconnect();
    }
    await this.producer.connect();
    this.connected = true;
  }

  private drop(n: number, why: string): void {
    this.o.onDropped?.(n);
    this.o.logger.warn({ dropped: n, why, topic: this.o.topic }, 'decision audit records dropped');
  }
}
