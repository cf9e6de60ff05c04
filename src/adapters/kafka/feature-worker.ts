import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  type Admin,
  type Consumer,
  type EachBatchPayload,
  Kafka,
  type KafkaMessage,
  logLevel,
  type Message,
  type Producer,
} from 'kafkajs';
import type { ApplyOutcome } from '../../domain/features/records.js';
import type { EventKind } from '../../domain/ingest.js';
import { describeProblems } from '../../domain/problems.js';
import type { Clock } from '../../ports/clock.js';
import type { Logger } from '../../ports/logger.js';
import type { Span, Tracer } from '../../ports/tracer.js';
import type { WorkerObserver } from '../../ports/worker-observer.js';
import type { WorkerProgressStore } from '../../ports/worker-progress.js';
import type { Ingest, IngestBatch, RefusedOutcome } from '../../usecases/ingest.js';
import { PartitionProgress } from './partition-progress.js';

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
  /** Where this worker records, once a second, when it last made progress and how far behind it is. */
  readonly progress?: WorkerProgressStore;
  /** Wall clock of the progress records and of the last-applied times (default: the system clock). */
  readonly clock?: Clock;
  /** How often progress is recorded, and a write that takes longer gets its lag refreshed (default 1000 ms). */
  readonly progressIntervalMs?: number;
  /**
   * Longest the worker keeps the event loop between yields (decoding slices, store writes; default 5 ms), so
   * that scoring in the same process keeps its deadline while the worker catches up. 0: yield at every slice.
   */
  readonly sliceMs?: number;
  /** Messages decoded per slice (default 100). */
  readonly sliceSize?: number;
  /**
   * kafkajs maxBytesPerPartition and maxBytes: bound what one fetch hands over, which kafkajs decodes in one
   * go (defaults 1 MiB and 10 MiB).
   */
  readonly maxBytesPerPartition?: number;
  readonly maxBytesPerFetch?: number;
  /**
   * Given when tracing is on: a message that carries a W3C trace context (`traceparent` header) is processed in a
   * consumer span continuing that trace, from its chunk's start to its offset's commit.
   */
  readonly tracer?: Tracer;
}

/** A chunk being written: since when (monotonic ms), and how to keep the group session alive meanwhile. */
interface Pending {
  readonly since: number;
  readonly heartbeat: () => Promise<void>;
}

const wallClock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };

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
  private readonly clock: Clock;
  private readonly partitions: PartitionProgress;
  /** This worker's name in the progress records. */
  readonly member: string;
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private recording: Promise<void> | undefined;
  private admin: Admin | undefined;
  private lastYield = 0;
  /** Slices waiting for their turn of the event loop (see yieldTurn). */
  private readonly resumable: (() => void)[] = [];

  constructor(private readonly o: FeatureWorkerOptions) {
    this.clock = o.clock ?? wallClock;
    this.partitions = new PartitionProgress(() => this.clock.now());
    this.member = `${o.clientId}@${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
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
      ...(o.maxBytesPerPartition ? { maxBytesPerPartition: o.maxBytesPerPartition } : {}),
      ...(o.maxBytesPerFetch ? { maxBytes: o.maxBytesPerFetch } : {}),
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) =>
      this.assigned(payload.memberAssignment),
    );
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
    const interval = this.o.progressIntervalMs ?? 1000;
    this.timer = setInterval(() => void this.tick(interval), interval);
    this.timer.unref();
    this.o.logger.info({ groupId: this.o.groupId, topics: [...this.kinds.keys()] }, 'feature worker started');
  }

  /** Finishes the batch in hand, commits, leaves the group and disconnects. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.timer);
    await this.consumer.disconnect();
    await this.producer.disconnect();
    await this.admin?.disconnect().catch(() => {});
    // Best effort (a record left behind expires; a store that is away must not hold the shutdown), and after
    // a write still under way, which would bring the record back.
    if (this.o.progress) {
      await bounded(this.recording ?? Promise.resolve(), 1000);
      await bounded(this.o.progress.remove(this.member), 1000).catch(() => {});
    }
    this.o.logger.info({ groupId: this.o.groupId }, 'feature worker stopped');
  }

  /** kafkajs' eachBatch: applies the batch chunk by chunk, committing after each. */
  protected async handle({
    batch,
    resolveOffset,
    heartbeat,
    isRunning,
    isStale,
  }: Pick<
    EachBatchPayload,
    'batch' | 'resolveOffset' | 'heartbeat' | 'isRunning' | 'isStale'
  >): Promise<void> {
    const kind = this.kinds.get(batch.topic);
    if (!kind) return;
    const { topic, partition } = batch;
    const chunkSize = this.o.chunkSize ?? 1000;
    const messages = batch.messages;
    const highWatermark = BigInt(batch.highWatermark);
    if (messages.length === 0) return;
    // Lag as of this fetch: the high watermark minus the position (the next offset to apply).
    const fetched = this.partitions.fetched(topic, partition, BigInt(messages[0]!.offset), highWatermark);
    if (fetched.added !== undefined) this.o.observer?.partitionApplied?.(topic, partition, fetched.added);
    this.o.observer?.lag?.(topic, partition, fetched.lag);
    for (let i = 0; i < messages.length; i += chunkSize) {
      if (!isRunning() || isStale()) return;
      const chunk = messages.slice(i, i + chunkSize);
      const k = `${partition} ${topic}`;
      const spans = this.o.tracer && this.traceChunk(topic, partition, kind, chunk);
      this.pending.set(k, { since: this.clock.monotonic(), heartbeat });
      try {
        await this.applyChunk(topic, partition, kind, chunk, heartbeat, isRunning, spans);
        const next = BigInt(chunk[chunk.length - 1]!.offset) + 1n;
        resolveOffset(String(next - 1n));
        await this.commit(topic, partition, String(next));
        const { lag, at } = this.partitions.applied(topic, partition, next, highWatermark);
        this.o.observer?.lag?.(topic, partition, lag);
        this.o.observer?.partitionApplied?.(topic, partition, at);
      } catch (err) {
        if (spans) for (const s of spans) s?.fail(err);
        throw err;
      } finally {
        this.pending.delete(k);
        if (spans) for (const s of spans) s?.end();
      }
      await heartbeat();
      await this.yieldTurn(true);
    }
  }

  /** Commits `offset` (the next one to read) for the partition. */
  protected async commit(topic: string, partition: number, offset: string): Promise<void> {
    await this.consumer.commitOffsets([{ topic, partition, offset }]);
  }

  /** Sends poison messages to the dead-letter topic. */
  protected async deadLetter(messages: Message[]): Promise<void> {
    await this.producer.send({ topic: this.o.topics.deadLetter, messages });
  }

  /** The high watermark of each of the topic's partitions, from the brokers. */
  protected async highWatermarks(topic: string): Promise<Map<number, bigint>> {
    if (!this.admin) {
      this.admin = this.kafka.admin();
      await this.admin.connect();
    }
    const offsets = await this.admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  }

  /**
   * Once a second: while a chunk has waited on the store longer than that, no fetch comes (kafkajs fetches
   * again once every batch in hand is done), so the lag of every partition whose position is known is
   * refreshed from the brokers' high watermarks (the backlog shows while the worker is stuck), and the waiting
   * partitions' group session is kept. Then the progress record.
   */
  protected async tick(intervalMs: number): Promise<void> {
    void this.recordProgress();
    if (this.ticking) return;
    this.ticking = true;
    try {
      const now = this.clock.monotonic();
      const stuck = [...this.pending.values()].filter((p) => now - p.since >= intervalMs);
      if (stuck.length === 0) return;
      const known = this.partitions.positioned();
      for (const topic of new Set(known.map((p) => p.topic))) {
        const high = await this.highWatermarks(topic).catch((err: unknown) => {
          this.o.logger.debug({ err, topic }, 'could not read the high watermarks');
          return undefined;
        });
        for (const { partition } of known.filter((p) => p.topic === topic)) {
          const hw = high?.get(partition);
          const lag = hw === undefined ? undefined : this.partitions.refreshed(topic, partition, hw);
          if (lag !== undefined) this.o.observer?.lag?.(topic, partition, lag);
        }
      }
      for (const p of stuck) await p.heartbeat().catch(() => {});
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Writes this worker's progress record. One write at a time: while the store holds one (Redis away, the
   * worker's client queueing), the next ticks skip theirs.
   */
  protected recordProgress(): Promise<void> {
    const store = this.o.progress;
    if (!store) return Promise.resolve();
    this.recording ??= store
      .record({ member: this.member, ...this.partitions.snapshot() })
      .catch((err: unknown) => this.o.logger.debug({ err }, 'could not record the worker progress'))
      .finally(() => {
        this.recording = undefined;
      });
    return this.recording;
  }

  /** The group's assignment for this worker (kafkajs GROUP_JOIN). */
  protected assigned(assignment: Readonly<Record<string, readonly number[]>>): void {
    const { released, added } = this.partitions.assign(assignment);
    for (const p of released) this.o.observer?.released?.(p.topic, p.partition);
    for (const p of added) this.o.observer?.partitionApplied?.(p.topic, p.partition, p.appliedAt);
  }

  /**
   * Lets the event loop run other work (scoring, in-process) once this slice has had its time (`always`: now).
   * Slices waiting to continue are resumed one per event-loop turn, whichever partition they belong to: with
   * several partitions in hand, the worker still holds the loop for one slice between two polls, not one each.
   */
  private async yieldTurn(always = false): Promise<void> {
    const now = performance.now();
    if (!always && now - this.lastYield < (this.o.sliceMs ?? 5)) return;
    await new Promise<void>((resume) => {
      if (this.resumable.push(resume) === 1) setImmediate(() => this.resumeNext());
    });
    this.lastYield = performance.now();
  }

  private resumeNext(): void {
    this.resumable.shift()?.();
    if (this.resumable.length > 0) setImmediate(() => this.resumeNext());
  }

  /** Decodes the chunk a slice at a time, yielding between slices. */
  private async decode(kind: EventKind, chunk: readonly KafkaMessage[]): Promise<IngestBatch> {
    const size = this.o.sliceSize ?? 100;
    if (chunk.length <= size)
      return this.o.ingest.decodeMessages(
        kind,
        chunk.map((m) => m.value),
      );
    const events: IngestBatch['events'][number][] = [];
    const spans: number[] = [];
    const refused: IngestBatch['refused'][number][] = [];
    const labels: IngestBatch['labels'][number][] = [];
    for (let i = 0; i < chunk.length; i += size) {
      if (i > 0) await this.yieldTurn();
      const part = this.o.ingest.decodeMessages(
        kind,
        chunk.slice(i, i + size).map((m) => m.value),
      );
      for (const e of part.events) events.push(e);
      for (const n of part.spans) spans.push(n);
      for (const p of part.refused) refused.push({ ...p, index: p.index + i });
      for (const l of part.labels) labels.push(l);
    }
    return { events, spans, refused, labels };
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
  private async applyChunk(
    topic: string,
    partition: number,
    kind: EventKind,
    chunk: KafkaMessage[],
    heartbeat: () => Promise<void>,
    isRunning: () => boolean,
    spans?: readonly (Span | undefined)[],
  ): Promise<void> {
    const batch = await this.decode(kind, chunk);
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
        this.deadLetter(
          poison.map(({ message, outcome, error, trace }) => ({
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
        ),
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
    await this.yieldTurn();
    const started = performance.now();
    const { counts, newest } = await this.retry('feature store', heartbeat, isRunning, () =>
      this.o.ingest.apply(batch),
    );
    this.o.observer?.storeWrite?.((performance.now() - started) / 1000);
    for (const [outcome, n] of Object.entries(counts))
      if (n) this.o.observer?.events?.(topic, outcome as ApplyOutcome, n);
    if (Number.isFinite(newest)) this.o.observer?.applied?.(newest);
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

function bounded<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((r) => {
    timer = setTimeout(() => r(undefined), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** kafkajs log entries into `logger` (component kafkajs). */
export function kafkaLogger(logger: Logger) {
  const log = logger.child({ component: 'kafkajs' });
  return () =>
    ({ level, log: entry }: { level: logLevel; log: { message: string } & Record<string, unknown> }) => {
      const { message, ...rest } = entry;
      if (level <= logLevel.ERROR) log.error(rest, message);
      else if (level === logLevel.WARN) log.warn(rest, message);
      else log.debug(rest, message);
    };
}
