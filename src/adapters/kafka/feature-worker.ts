import {
  type Consumer,
  type EachBatchPayload,
  Kafka,
  type KafkaMessage,
  logLevel,
  type Producer,
} from 'kafkajs';
import type { ApplyOutcome } from '../../domain/features/records.js';
import type { EventKind } from '../../domain/ingest.js';
import { describeProblems } from '../../domain/problems.js';
import type { Logger } from '../../ports/logger.js';
import type { Span, Tracer } from '../../ports/tracer.js';
import type { WorkerObserver } from '../../ports/worker-observer.js';
import type { Ingest, RefusedOutcome } from '../../usecases/ingest.js';

export interface WorkerTopics {
  readonly transactions: string;
  readonly labels: string;
  readonly deadLetter: string;
}

export interface FeatureWorkerOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly groupId: string;
  readonly topics: WorkerTopics;
  /** Validation, store writes and outcome counts: the same use case as POST /v1/events. */
  readonly ingest: Ingest;
  readonly logger: Logger;
  readonly observer?: WorkerObserver;
  readonly fromBeginning?: boolean;
  /** Messages applied per store round trip; offsets are committed after each chunk. */
  readonly chunkSize?: number;
  /** Partitions handled at once (kafkajs partitionsConsumedConcurrently); one entity's events stay in one partition. */
  readonly concurrency?: number;
  /** kafkajs sessionTimeout; heartbeats go every third of it. */
  readonly sessionTimeoutMs?: number;
  readonly retryDelayMs?: { readonly min: number; readonly max: number };
  /**
   * Given when tracing is on: a message that carries a W3C trace context (`traceparent` header) is processed in a
   * consumer span continuing that trace, from its chunk's start to its offset's commit.
   */
  readonly tracer?: Tracer;
}

/**
 * Consumes `transactions` and `labels` into the feature store. Offsets are committed only after the store
 * (and, for poison messages, the dead-letter topic) has the data; writes are idempotent, so a redelivery
 * after a crash changes nothing. A failing store is retried for as long as it takes: lag grows, nothing is lost.
 */
export class FeatureWorker {
  private readonly kafka: Kafka;
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly kinds: Map<string, EventKind>;
  private running = false;

  constructor(private readonly o: FeatureWorkerOptions) {
    this.kafka = new Kafka({
      clientId: o.clientId,
      brokers: [...o.brokers],
      logLevel: logLevel.WARN,
      logCreator: kafkaLogger(o.logger),
    });
    const sessionTimeout = o.sessionTimeoutMs ?? 30_000;
    this.consumer = this.kafka.consumer({
      groupId: o.groupId,
      allowAutoTopicCreation: false,
      sessionTimeout,
      heartbeatInterval: Math.floor(sessionTimeout / 3),
    });
    this.producer = this.kafka.producer({
      allowAutoTopicCreation: true,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    this.kinds = new Map([
      [o.topics.transactions, 'transaction'],
      [o.topics.labels, 'label'],
    ]);
  }

  async start(): Promise<void> {
    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({
      topics: [...this.kinds.keys()],
      fromBeginning: this.o.fromBeginning ?? true,
    });
    this.running = true;
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.o.concurrency ?? 1,
      eachBatch: (payload) => this.handle(payload),
    });
    this.o.logger.info({ groupId: this.o.groupId, topics: [...this.kinds.keys()] }, 'feature worker started');
  }

  /** Finishes the batch in hand, commits, leaves the group and disconnects. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.consumer.disconnect();
    await this.producer.disconnect();
    this.o.logger.info({ groupId: this.o.groupId }, 'feature worker stopped');
  }

  private async handle({
    batch,
    resolveOffset,
    heartbeat,
    isRunning,
    isStale,
  }: EachBatchPayload): Promise<void> {
    const kind = this.kinds.get(batch.topic);
    if (!kind) return;
    const chunkSize = this.o.chunkSize ?? 1000;
    const messages = batch.messages;
    for (let i = 0; i < messages.length; i += chunkSize) {
      if (!isRunning() || isStale()) return;
      const chunk = messages.slice(i, i + chunkSize);
      const last = chunk[chunk.length - 1]!.offset;
      const spans = this.o.tracer && this.traceChunk(batch.topic, batch.partition, kind, chunk);
      try {
        await this.applyChunk(batch.topic, batch.partition, kind, chunk, heartbeat, isRunning, spans);
        resolveOffset(last);
        await this.consumer.commitOffsets([
          { topic: batch.topic, partition: batch.partition, offset: String(BigInt(last) + 1n) },
        ]);
      } catch (err) {
        if (spans) for (const s of spans) s?.fail(err);
        throw err;
      } finally {
        if (spans) for (const s of spans) s?.end();
      }
      this.o.observer?.lag?.(
        batch.topic,
        batch.partition,
        Number(BigInt(batch.highWatermark) - BigInt(last) - 1n),
      );
      await heartbeat();
    }
  }

  private async applyChunk(
    topic: string,
    partition: number,
    kind: EventKind,
    chunk: KafkaMessage[],
    heartbeat: () => Promise<void>,
    isRunning: () => boolean,
    spans?: readonly (Span | undefined)[],
  ): Promise<void> {
    const batch = this.o.ingest.decodeMessages(
      kind,
      chunk.map((m) => m.value),
    );
    if (batch.refused.length) {
      const poison = batch.refused.map(({ index, outcome, problems }) => {
        const span = spans?.[index];
        const trace: Record<string, string> = {};
        if (span) {
          span.setAttributes({ 'fraudscore.event.outcome': outcome });
          this.o.tracer!.inject(span.context, trace);
        }
        return { message: chunk[index]!, outcome, error: describeProblems(problems), trace };
      });
      await this.retry('dead-letter', heartbeat, isRunning, () =>
        this.producer.send({
          topic: this.o.topics.deadLetter,
          messages: poison.map(({ message, outcome, error, trace }) => ({
            key: message.key,
            value: message.value,
            headers: {
              'x-reason': outcome,
              'x-error': error.slice(0, 4000),
              'x-source-topic': topic,
              'x-source-partition': String(partition),
              'x-source-offset': message.offset,
              ...trace,
            },
          })),
        }),
      );
      const refused: Partial<Record<RefusedOutcome, number>> = {};
      for (const p of poison) {
        this.o.logger.warn(
          { topic, partition, offset: p.message.offset, reason: p.outcome, error: p.error },
          'dead-lettered',
        );
        refused[p.outcome] = (refused[p.outcome] ?? 0) + 1;
      }
      for (const [outcome, n] of Object.entries(refused))
        this.o.observer?.events?.(topic, outcome as RefusedOutcome, n);
      for (let k = 0; k < poison.length; k++) this.o.observer?.deadLetter?.(topic);
    }
    if (batch.events.length === 0) return;
    const started = performance.now();
    const { counts, newest } = await this.retry('feature store', heartbeat, isRunning, () =>
      this.o.ingest.apply(batch),
    );
    this.o.observer?.storeWrite?.((performance.now() - started) / 1000);
    for (const [outcome, n] of Object.entries(counts))
      if (n) this.o.observer?.events?.(topic, outcome as ApplyOutcome, n);
    if (Number.isFinite(newest)) this.o.observer?.applied?.(newest);
  }

  /**
   * A consumer span per message of the chunk that carries a valid W3C trace context, child of it (undefined for
   * the others); undefined when none does. Never the message key or any identifier in the event.
   */
  private traceChunk(
    topic: string,
    partition: number,
    kind: EventKind,
    chunk: readonly KafkaMessage[],
  ): (Span | undefined)[] | undefined {
    const tracer = this.o.tracer!;
    let traced = false;
    const spans = chunk.map((m) => {
      if (!m.headers?.traceparent) return undefined;
      const parent = tracer.extract(m.headers);
      if (!parent) return undefined;
      traced = true;
      return tracer.start(`${topic} process`, {
        kind: 'consumer',
        parent,
        attributes: {
          'messaging.system': 'kafka',
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'process',
          'messaging.destination.name': topic,
          'messaging.destination.partition.id': String(partition),
          'messaging.consumer.group.name': this.o.groupId,
          'messaging.kafka.offset': Number(m.offset),
          'messaging.batch.message_count': chunk.length,
          'fraudscore.event.kind': kind,
        },
      });
    });
    return traced ? spans : undefined;
  }

  /** Retries `fn` with capped exponential backoff until it succeeds or the consumer stops (then throws: no commit). */
  private async retry<T>(
    what: string,
    heartbeat: () => Promise<void>,
    isRunning: () => boolean,
    fn: () => Promise<T>,
  ): Promise<T> {
    const { min, max } = this.o.retryDelayMs ?? { min: 100, max: 5000 };
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!isRunning()) throw err;
        const delay = Math.min(max, min * 2 ** attempt);
        this.o.logger.warn(
          { err, attempt, delayMs: delay },
          `${what} write failed; holding offsets and retrying`,
        );
        await new Promise((r) => setTimeout(r, delay));
        await heartbeat().catch(() => {});
      }
    }
  }
}

function kafkaLogger(logger: Logger) {
  const log = logger.child({ component: 'kafkajs' });
  return () =>
    ({ level, log: entry }: { level: logLevel; log: { message: string } & Record<string, unknown> }) => {
      const { message, ...rest } = entry;
      if (level <= logLevel.ERROR) log.error(rest, message);
      else if (level === logLevel.WARN) log.warn(rest, message);
      else log.debug(rest, message);
    };
}
