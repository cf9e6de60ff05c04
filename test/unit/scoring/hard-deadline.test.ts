/**
 * Issue 17, the deadline is a hard bound: work is done in bounded slices, and once the deadline has passed no
 * window is read and no inference run starts. Time is a fake clock moved between slices of the event loop, so
 * the test says exactly where the deadline fell, whatever the machine.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryFeatureStore } from '../../../src/adapters/memory/memory-store.js';
import type { Transaction } from '../../../src/domain/events.js';
import { entityUnion } from '../../../src/domain/features/engine.js';
import type { FeatureStore } from '../../../src/ports/feature-store.js';
import type { Logger } from '../../../src/ports/logger.js';
import { ModelRegistry } from '../../../src/usecases/models/registry.js';
import { Scorer } from '../../../src/usecases/scoring/scorer.js';
import { FakeSource, fakeClock, featureSets } from '../models/fakes.js';

const quiet: Logger = { info() {}, warn() {}, error() {}, debug() {}, child: () => quiet };
const noop = { observe() {}, inc() {} };

async function setup(o: { clock?: ReturnType<typeof fakeClock>; store?: FeatureStore } = {}) {
  const clock = o.clock ?? fakeClock();
  const source = new FakeSource(['1']);
  const registry = new ModelRegistry({
    source,
    logger: quiet,
    clock,
    defaultModel: 'fraudscore',
    batching: { enabled: false, maxRows: 1, maxWaitMs: 0 },
    psiWindow: 100,
  });
  await registry.activate('fraudscore', '1');
  /** Rows the members have scored (each session records the rows of each run). */
  const rows = () => source.sessions.get('1')!.reduce((n, s) => n + s.runs.reduce((a, b) => a + b, 0), 0);
  const warmup = rows();
  const scorer = new Scorer({
    registry,
    modelName: 'fraudscore',
    store: o.store ?? new MemoryFeatureStore({ horizonMs: 40 * 86_400_000 }),
    featureSets,
    entities: entityUnion([...featureSets.values()]),
    clock,
    logger: quiet,
    metrics: { stageDuration: noop, decisions: noop, score: noop, degraded: noop, featureDefaulted: noop },
  });
  return { clock, scorer, rowsSinceStart: () => rows() - warmup, registry };
}

const txs = (n: number, tag: string): Transaction[] =>
  Array.from({ length: n }, (_, i) => ({
    transaction_id: `${tag}-${i}`,
    timestamp: '2018-08-09T10:00:00Z',
    customer_id: `C${i}`,
    terminal_id: 'T1',
    amount: 10 + i,
  }));

/** A terminal, T1, with 50,000 transactions in its windows (t − 31 d, t − 8 d] before 2018-08-09T10:00Z. */
async function hotStore(): Promise<MemoryFeatureStore> {
  const memory = new MemoryFeatureStore({ horizonMs: 40 * 86_400_000 });
  const t = Date.parse('2018-08-09T10:00:00Z');
  await memory.apply(
    Array.from({ length: 50_000 }, (_, i) => ({
      kind: 'tx' as const,
      key: { entity: 'terminal', id: 'T1' },
      txId: `h${i}`,
      t: t - 8 * 86_400_000 - i * 40_000,
      amount: 10,
    })),
  );
  return memory;
}

describe('the deadline is a hard bound', () => {
  it('scores a batch in full when the deadline does not pass', async () => {
    const { clock, scorer, rowsSinceStart, registry } = await setup();
    const results = await scorer.score(txs(200, 'ok'), { explain: false, deadline: clock.monotonic() + 50 });
    expect(results.every((r) => !r.degraded)).toBe(true);
    // Every row once by each of the two members.
    expect(rowsSinceStart()).toBe(400);
    await registry.close();
  });

  it('past the deadline after the first slice: the rest take defaults and no inference run starts', async () => {
    const { clock, scorer, rowsSinceStart, registry } = await setup();
    // Queued before the scorer's first yield: the deadline passes between the first and second slice.
    setImmediate(() => clock.advance(1_000));
    const results = await scorer.score(txs(200, 'late'), {
      explain: false,
      deadline: clock.monotonic() + 50,
    });
    expect(results).toHaveLength(200);
    const firstSlice = results.slice(0, 64);
    const rest = results.slice(64);
    for (const r of firstSlice) expect(r.degraded_reasons).toEqual(['model_timeout']);
    for (const r of rest) expect(r.degraded_reasons).toEqual(['features_timeout', 'model_timeout']);
    // Every answer still comes from the fallback rules, and no member ran.
    expect(results.every((r) => r.score >= 0 && r.score <= 1)).toBe(true);
    expect(rowsSinceStart()).toBe(0);
    await registry.close();
  });

  it('a deadline already past when the features arrive spends nothing more on them', async () => {
    const { clock, scorer, rowsSinceStart, registry } = await setup();
    const deadline = clock.monotonic() + 50;
    clock.advance(60);
    const [r] = await scorer.score(txs(1, 'gone'), { explain: false, deadline });
    expect(r!.degraded).toBe(true);
    expect(r!.degraded_reasons).toContain('model_timeout');
    expect(rowsSinceStart()).toBe(0);
    await registry.close();
  });

  describe('with a store that answers after the deadline', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('answers at the deadline with defaults, not when the store does', async () => {
      // Timers and performance.now() are fake: the deadline's timer fires when the test moves time, exactly.
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
      const clock = { ...fakeClock(), now: () => 1_700_000_000_000, monotonic: () => performance.now() };
      const memory = await hotStore();
      const slow: FeatureStore = {
        ...memory,
        kind: 'slow',
        apply: (e) => memory.apply(e),
        read: (q) => memory.read(q),
        summarize: (q) => new Promise((r) => setTimeout(() => r(memory.summarize(q)), 200)),
        ping: async () => {},
        close: async () => {},
      };
      const { scorer, registry } = await setup({ clock: clock as never, store: slow });
      const scoring = scorer.score(txs(1, 'slow'), { explain: false, deadline: performance.now() + 50 });
      await vi.advanceTimersByTimeAsync(50);
      const [r] = await scoring;
      // Past the deadline nothing more is spent: no inference either.
      expect(r!.degraded_reasons).toEqual(['features_timeout', 'model_timeout']);
      expect(r!.timings_ms.total).toBeLessThanOrEqual(50 + 5);
      await vi.advanceTimersByTimeAsync(200);
      await registry.close();
    });

    it('reads a terminal with 50,000 transactions in its windows as a bounded summary, and is not degraded', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
      const clock = { ...fakeClock(), now: () => 1_700_000_000_000, monotonic: () => performance.now() };
      const memory = await hotStore();
      const sizes: number[] = [];
      const counted: number[] = [];
      const store: FeatureStore = {
        ...memory,
        kind: 'memory',
        apply: (e) => memory.apply(e),
        read: (q) => memory.read(q),
        summarize: async (q) => {
          const got = await memory.summarize(q);
          q.forEach((x, i) => {
            if (x.id !== 'T1') return;
            const { start, end, tiles } = got[i]!;
            sizes.push(end - start + (tiles?.count.length ?? 0));
            counted.push(end - start + (tiles?.count.reduce((a, b) => a + b, 0) ?? 0));
          });
          return got;
        },
        ping: async () => {},
        close: async () => {},
      };
      const { scorer, registry } = await setup({ clock: clock as never, store });
      const [r] = await scorer.score(txs(1, 'hot'), { explain: false, deadline: performance.now() + 50 });
      expect(r!.degraded).toBe(false);
      // Every one of the 50,000 transactions is accounted for, by a few hundred records and aggregates at most.
      expect(counted).toEqual([50_000]);
      expect(sizes[0]).toBeLessThan(500);
      await registry.close();
    });
  });
});
