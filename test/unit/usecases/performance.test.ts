import { describe, expect, it } from 'vitest';
import { MemoryDecisionLog } from '../../../src/adapters/memory/memory-decision-log.js';
import { DAY_MS } from '../../../src/domain/features/time.js';
import type { DecisionEntry, DecisionLog } from '../../../src/ports/decision-log.js';
import { Performance } from '../../../src/usecases/performance.js';
import { DecisionRecorder } from '../../../src/usecases/scoring/decision-recorder.js';
import { rng } from '../../helpers/generate.js';
import { silentLogger } from '../../helpers/logger.js';
import { fakeClock } from '../models/fakes.js';

const MODEL = 'fraudscore';

function setup(serving: { active?: string; canary?: string; shadow?: string }) {
  const clock = fakeClock();
  const log = new MemoryDecisionLog(clock, 120 * DAY_MS);
  const performance = new Performance({
    log,
    clock,
    serving: () => serving,
    maturityMs: 60 * DAY_MS,
    minFrauds: 30,
  });
  return { clock, log, performance };
}

const decision = (version: string, role: 'active' | 'canary' | 'shadow', score: number, at: number) => ({
  version,
  role,
  score,
  decision: score >= 0.9 ? ('decline' as const) : score >= 0.5 ? ('review' as const) : ('approve' as const),
  at,
});

describe('live performance report', () => {
  it('counts unlabelled decisions as legitimate once their day is LABEL_MATURITY_DAYS old (fake clock)', async () => {
    const { clock, log, performance } = setup({ active: '1' });
    const t = clock.now();
    await log.record(MODEL, [
      { transactionId: 'a', decisions: [decision('1', 'active', 0.95, t)] },
      { transactionId: 'b', decisions: [decision('1', 'active', 0.2, t)] },
      { transactionId: 'c', decisions: [decision('1', 'active', 0.6, t)] },
    ]);
    await log.label(MODEL, [
      { transactionId: 'a', fraud: true, transactionAt: t, labelledAt: t + 5 * 3_600_000 },
    ]);
    let v = (await performance.report(MODEL)).versions[0]!;
    expect(v).toMatchObject({ labelled: 1, frauds: 1, explicit: 1, matured: 0, auc: null });
    expect(v.label_latency_p50_hours).toBe(5.5);
    clock.advance(59 * DAY_MS);
    expect((await performance.report(MODEL)).versions[0]!.matured).toBe(0);
    clock.advance(2 * DAY_MS);
    v = (await performance.report(MODEL)).versions[0]!;
    expect(v).toMatchObject({
      labelled: 3,
      frauds: 1,
      explicit: 1,
      matured: 2,
      auc: 1,
      precision_at_decline: 1,
      precision_at_review: 0.5,
      recall_at_review: 1,
    });
    // `since` counts from a decision day: a later day has nothing.
    const later = (await performance.report(MODEL, t + DAY_MS)).versions[0]!;
    expect(later).toMatchObject({ labelled: 0, frauds: 0, auc: null, precision_at_decline: null });
  });

  it('compares a canary unpaired, and says insufficient_data below the minimum of frauds', async () => {
    const { clock, log, performance } = setup({ active: '1', canary: '2' });
    const r = rng(7);
    const t = clock.now();
    const entries: DecisionEntry[] = [];
    const labels = [];
    for (let i = 0; i < 4_000; i++) {
      const fraud = r() < 0.05;
      const canary = i % 2 === 0;
      // The active version separates frauds well; the canary barely.
      const score = canary
        ? Math.min(1, r() * 0.8 + (fraud ? 0.15 : 0))
        : Math.min(1, r() * 0.5 + (fraud ? 0.45 : 0));
      entries.push({
        transactionId: `t${i}`,
        decisions: [decision(canary ? '2' : '1', canary ? 'canary' : 'active', score, t)],
      });
      labels.push({ transactionId: `t${i}`, fraud, transactionAt: t, labelledAt: t });
    }
    await log.record(MODEL, entries);
    await log.label(MODEL, labels.slice(0, 200));
    expect((await performance.report(MODEL)).comparison).toMatchObject({
      champion: '1',
      challenger: '2',
      paired: false,
      method: 'delong_unpaired',
      verdict: 'insufficient_data',
      p_value: null,
    });
    await log.label(MODEL, labels);
    const c = (await performance.report(MODEL)).comparison!;
    expect(c).toMatchObject({ paired: false, n: 4_000, verdict: 'worse' });
    expect(c.p_value!).toBeLessThan(0.05);
    expect(c.ci95![1]).toBeLessThan(0);
  });

  it('has no comparison without a challenger, and reports roles as they are now', async () => {
    const { clock, log, performance } = setup({ active: '2' });
    await log.record(MODEL, [{ transactionId: 'x', decisions: [decision('1', 'active', 0.3, clock.now())] }]);
    await log.record(MODEL, [{ transactionId: 'y', decisions: [decision('2', 'canary', 0.3, clock.now())] }]);
    const r = await performance.report(MODEL);
    expect(r.comparison).toBeUndefined();
    expect(r.versions.map((v) => [v.version, v.role])).toEqual([
      ['1', 'retired'],
      ['2', 'active'],
    ]);
  });
});

describe('decision recorder', () => {
  it('records off the call, in batches; beyond its queue it drops and counts', async () => {
    const clock = fakeClock();
    const log = new MemoryDecisionLog(clock, DAY_MS);
    const calls: number[] = [];
    const counting: DecisionLog = Object.assign(Object.create(log), {
      record: (model: string, entries: readonly DecisionEntry[]) => {
        calls.push(entries.length);
        return log.record(model, entries);
      },
    });
    const dropped: [number, string][] = [];
    const recorder = new DecisionRecorder({
      log: counting,
      model: MODEL,
      logger: silentLogger(),
      maxQueue: 1_000,
      batchSize: 400,
      onDropped: (n, reason) => dropped.push([n, reason]),
    });
    const entries = Array.from({ length: 1_200 }, (_, i) => ({
      transactionId: `r${i}`,
      decisions: [decision('1', 'active', 0.1, clock.now())],
    }));
    recorder.record(entries);
    // Nothing is written before the caller's turn ends.
    expect(calls).toEqual([]);
    await recorder.flush();
    expect(calls).toEqual([400, 400, 200]);
    expect(dropped).toEqual([[200, 'queue_full']]);
    expect(
      (await log.label(MODEL, [{ transactionId: 'r999', fraud: false, transactionAt: 0, labelledAt: 0 }]))[0],
    ).toMatchObject({ unscored: false });
  });

  it('drops a batch the store refuses, counted, and goes on', async () => {
    const clock = fakeClock();
    const log = new MemoryDecisionLog(clock, DAY_MS);
    let fail = true;
    const flaky: DecisionLog = Object.assign(Object.create(log), {
      record: (model: string, entries: readonly DecisionEntry[]) =>
        fail ? Promise.reject(new Error('store away')) : log.record(model, entries),
    });
    const dropped: [number, string][] = [];
    const recorder = new DecisionRecorder({
      log: flaky,
      model: MODEL,
      logger: silentLogger(),
      onDropped: (n, reason) => dropped.push([n, reason]),
    });
    recorder.record([{ transactionId: 'lost', decisions: [decision('1', 'active', 0.1, clock.now())] }]);
    await recorder.flush();
    fail = false;
    recorder.record([{ transactionId: 'kept', decisions: [decision('1', 'active', 0.1, clock.now())] }]);
    await recorder.flush();
    expect(dropped).toEqual([[1, 'store_error']]);
    const [lost, kept] = await log.label(MODEL, [
      { transactionId: 'lost', fraud: true, transactionAt: 0, labelledAt: 0 },
      { transactionId: 'kept', fraud: true, transactionAt: 0, labelledAt: 0 },
    ]);
    expect([lost!.unscored, kept!.unscored]).toEqual([true, false]);
  });
});
