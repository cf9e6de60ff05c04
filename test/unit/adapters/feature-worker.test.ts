/**
 * The feature worker's batch handling without a broker: kafkajs hands eachBatch a batch; here the test does, to
 * a FeatureWorker whose commits, dead letters and high-watermark reads are stubbed. What it reports (lag at each
 * fetch and after each chunk, last-applied times, releases, its progress record) and that it yields the event
 * loop between slices of work.
 */
import type { Batch, KafkaMessage, Message } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../../src/adapters/fs/feature-set-files.js';
import { FeatureWorker, type FeatureWorkerOptions } from '../../../src/adapters/kafka/feature-worker.js';
import { PartitionProgress } from '../../../src/adapters/kafka/partition-progress.js';
import { MemoryProgressStore } from '../../../src/adapters/memory/memory-progress.js';
import { MemoryFeatureStore } from '../../../src/adapters/memory/memory-store.js';
import { entityUnion } from '../../../src/domain/features/engine.js';
import type { FeatureStore } from '../../../src/ports/feature-store.js';
import { Ingest } from '../../../src/usecases/ingest.js';
import { manualClock } from '../../conformance/progress-store.suite.js';
import { silentLogger } from '../../helpers/logger.js';

const entities = entityUnion([...loadFeatureSets('features').values()]);
const TOPICS = { transactions: 'tx', labels: 'labels', deadLetter: 'dlq' };
const T0 = Date.parse('2026-03-01T00:00:00Z');

class TestWorker extends FeatureWorker {
  readonly commits: string[] = [];
  readonly deadLetters: Message[] = [];
  highs = new Map<number, bigint>();
  protected override async commit(topic: string, partition: number, offset: string) {
    this.commits.push(`${topic}/${partition}@${offset}`);
  }
  protected override async deadLetter(messages: Message[]) {
    this.deadLetters.push(...messages);
  }
  protected override async highWatermarks() {
    return this.highs;
  }
  run(messages: KafkaMessage[], highWatermark: number, heartbeat = async () => {}, partition = 0) {
    const batch = {
      topic: TOPICS.transactions,
      partition,
      highWatermark: String(highWatermark),
      messages,
    };
    return this.handle({
      batch: batch as unknown as Batch,
      resolveOffset: () => {},
      heartbeat,
      isRunning: () => true,
      isStale: () => false,
    });
  }
  assign(a: Record<string, number[]>) {
    this.assigned(a);
  }
  tickNow() {
    return this.tick(0);
  }
  record() {
    return this.recordProgress();
  }
}

function message(offset: number, valid = true): KafkaMessage {
  const value = valid
    ? JSON.stringify({
        transaction_id: `t${offset}`,
        timestamp: new Date(Date.parse('2018-04-01T00:00:00Z') + offset * 1000).toISOString(),
        customer_id: `C${offset % 3}`,
        terminal_id: `T${offset % 2}`,
        amount: 10 + offset,
      })
    : '{"not": "a transaction"';
  return {
    key: Buffer.from(`C${offset % 3}`),
    value: Buffer.from(value),
    offset: String(offset),
    timestamp: '0',
    attributes: 0,
    headers: {},
  } as KafkaMessage;
}

function setup(o: Partial<FeatureWorkerOptions> & { store?: FeatureStore } = {}) {
  const m = manualClock(T0);
  const calls: string[] = [];
  const progress = new MemoryProgressStore(m.clock);
  const ingest = new Ingest({
    store: o.store ?? new MemoryFeatureStore({ horizonMs: 1e12 }),
    entities,
    // Off: these tests are about lag, progress and yielding, with events dated whenever.
    limit: { clock: m.clock, maxFutureMs: Number.POSITIVE_INFINITY },
  });
  const worker = new TestWorker({
    brokers: ['127.0.0.1:1'],
    clientId: 'unit',
    groupId: 'unit',
    topics: TOPICS,
    ingest,
    logger: silentLogger(),
    progress,
    clock: m.clock,
    chunkSize: 4,
    sliceSize: 2,
    sliceMs: 0,
    observer: {
      lag: (t, p, n) => calls.push(`lag ${t}/${p} ${n}`),
      partitionApplied: (t, p, ms) => calls.push(`applied ${t}/${p} +${ms - T0}`),
      released: (t, p) => calls.push(`released ${t}/${p}`),
      events: (t, outcome, n) => calls.push(`events ${t} ${outcome} ${n}`),
    },
    ...o,
  });
  return { worker, calls, progress, m, ingest };
}

const offsets = (from: number, n: number) => Array.from({ length: n }, (_, i) => message(from + i));

describe('FeatureWorker reports', () => {
  it('lag at the start of each batch and after each chunk, and when each partition last applied', async () => {
    const { worker, calls, m, ingest } = setup();
    const apply = ingest.apply.bind(ingest);
    ingest.apply = async (b) => {
      calls.push('write');
      m.advance(1_000);
      return apply(b);
    };
    await worker.run(offsets(10, 8), 20);
    expect(calls).toEqual([
      'applied tx/0 +0', // first seen: counts as applied when it was taken on
      'lag tx/0 10', // high watermark 20 − position 10, before anything is written
      'write',
      'events tx applied 4',
      'lag tx/0 6',
      'applied tx/0 +1000',
      'write',
      'events tx applied 4',
      'lag tx/0 2',
      'applied tx/0 +2000',
    ]);
    expect(worker.commits).toEqual(['tx/0@14', 'tx/0@18']);
  });

  it('records its progress: total lag, and the last progress of the partitions that lag', async () => {
    const { worker, progress, m } = setup();
    await worker.run(offsets(10, 8), 20);
    m.advance(5_000);
    await worker.record();
    expect(await progress.readAll()).toEqual([
      { member: worker.member, lag: 2, progressAt: T0, at: T0 + 5_000 },
    ]);
    // Caught up: as fresh as the record.
    await worker.run(offsets(18, 2), 20);
    m.advance(1_000);
    await worker.record();
    expect(await progress.readAll()).toEqual([
      { member: worker.member, lag: 0, progressAt: T0 + 6_000, at: T0 + 6_000 },
    ]);
  });

  it('forgets partitions the group gives to another worker, and shows new ones as applied at assignment', () => {
    const { worker, calls, m } = setup();
    worker.assign({ tx: [0, 1], labels: [0] });
    m.advance(3_000);
    worker.assign({ tx: [1, 2] });
    expect(calls).toEqual([
      'applied tx/0 +0',
      'applied tx/1 +0',
      'applied labels/0 +0',
      'released tx/0',
      'released labels/0',
      'applied tx/2 +3000',
    ]);
  });

  it('while a write waits on the store: refreshes the lag from the high watermark, heartbeats, records progress', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let hold = false;
    let waiting = 0;
    const memory = new MemoryFeatureStore({ horizonMs: 1e12 });
    const store: FeatureStore = {
      kind: 'memory',
      apply: async (e) => {
        if (hold) {
          waiting++;
          await held;
        }
        return memory.apply(e);
      },
      read: (q) => memory.read(q),
      summarize: (q) => memory.summarize(q),
      ping: async () => {},
      close: async () => {},
    };
    const { worker, calls, progress, m } = setup({ store });
    // Partition 1 is done with its batch; then partition 0's write waits: no fetch comes for either meanwhile.
    await worker.run(offsets(0, 2), 2, async () => {}, 1);
    hold = true;
    let heartbeats = 0;
    const running = worker.run(offsets(10, 4), 14, async () => {
      heartbeats++;
    });
    while (waiting === 0) await new Promise((r) => setImmediate(r));
    worker.highs = new Map([
      [0, 50n],
      [1, 9n],
    ]);
    m.advance(60_000);
    calls.length = 0;
    await worker.tickNow();
    await worker.record();
    expect(calls.sort()).toEqual(['lag tx/0 40', 'lag tx/1 7']);
    expect(heartbeats).toBe(1);
    // Partition 1 applied at T0 and lags since: the oldest progress among the lagging partitions.
    expect(await progress.readAll()).toEqual([
      { member: worker.member, lag: 47, progressAt: T0, at: T0 + 60_000 },
    ]);
    release();
    await running;
    expect(calls.at(-1)).toBe('applied tx/0 +60000');
  });
});

describe('FeatureWorker shares the event loop', () => {
  it('yields between decoding slices, before the store write and between chunks', async () => {
    const { worker, ingest } = setup();
    let turns = 0;
    let spinning = true;
    const spin = () => {
      turns++;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    const seen: string[] = [];
    const decode = ingest.decodeMessages.bind(ingest);
    ingest.decodeMessages = (kind, values) => {
      seen.push(`decode@${turns}`);
      return decode(kind, values);
    };
    const apply = ingest.apply.bind(ingest);
    ingest.apply = (b) => {
      seen.push(`write@${turns}`);
      return apply(b);
    };
    await worker.run(offsets(0, 8), 8);
    spinning = false;
    // Two chunks of 4, each decoded in two slices of 2: the loop turned between every two steps.
    expect(seen.map((s) => s.split('@')[0])).toEqual([
      'decode',
      'decode',
      'write',
      'decode',
      'decode',
      'write',
    ]);
    const at = seen.map((s) => Number(s.split('@')[1]));
    for (let i = 1; i < at.length; i++) expect(at[i], seen.join(' ')).toBeGreaterThan(at[i - 1]!);
  });

  it('runs one slice per event-loop turn, whichever of its partitions it belongs to', async () => {
    const { worker, ingest } = setup();
    let turns = 0;
    let spinning = true;
    const spin = () => {
      turns++;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    const slices: number[] = [];
    const decode = ingest.decodeMessages.bind(ingest);
    ingest.decodeMessages = (kind, values) => {
      slices.push(turns);
      return decode(kind, values);
    };
    await Promise.all([
      worker.run(offsets(0, 8), 8, async () => {}, 0),
      worker.run(offsets(100, 8), 108, async () => {}, 1),
      worker.run(offsets(200, 8), 208, async () => {}, 2),
    ]);
    spinning = false;
    // The first slice of each batch runs as kafkajs hands it over; every later one waits for a turn of its own.
    expect(slices).toHaveLength(12);
    expect(new Set(slices.slice(3)).size).toBe(9);
  });

  it('keeps the index of each poison message across slices', async () => {
    const { worker, calls } = setup();
    const messages = offsets(0, 8);
    messages[1] = message(1, false);
    messages[2] = message(2, false);
    messages[7] = message(7, false);
    await worker.run(messages, 8);
    expect(worker.deadLetters.map((d) => (d.headers as Record<string, string>)['x-source-offset'])).toEqual([
      '1',
      '2',
      '7',
    ]);
    expect(calls.filter((c) => c.startsWith('events'))).toEqual([
      'events tx invalid 2',
      'events tx applied 2',
      'events tx invalid 1',
      'events tx applied 3',
    ]);
  });
});

describe('PartitionProgress', () => {
  it('counts a worker as current when no partition lags, however long ago it applied', () => {
    const m = manualClock(T0);
    const p = new PartitionProgress(m.clock.now);
    p.assign({ a: [0, 1] });
    expect(p.fetched('a', 0, 10n, 15n)).toEqual({ lag: 5, added: undefined });
    m.advance(10_000);
    expect(p.applied('a', 1, 7n, 7n)).toEqual({ lag: 0, at: T0 + 10_000 });
    m.advance(10_000);
    expect(p.snapshot()).toEqual({ lag: 5, progressAt: T0, at: T0 + 20_000 });
    expect(p.refreshed('a', 0, 25n)).toBe(15);
    expect(p.snapshot().lag).toBe(15);
    p.applied('a', 0, 25n, 25n);
    m.advance(3_600_000);
    expect(p.snapshot()).toEqual({ lag: 0, progressAt: T0 + 3_620_000, at: T0 + 3_620_000 });
  });

  it('tells the lag only of partitions whose position a batch has shown', () => {
    const p = new PartitionProgress(() => T0);
    p.assign({ a: [0, 1] });
    p.fetched('a', 1, 3n, 3n);
    expect(p.positioned()).toEqual([{ topic: 'a', partition: 1 }]);
    expect(p.refreshed('a', 0, 100n)).toBeUndefined();
    expect(p.refreshed('a', 1, 100n)).toBe(97);
  });
});
