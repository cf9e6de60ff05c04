import { afterAll, describe, expect, it } from 'vitest';
import { binOf } from '../../src/domain/performance/outcomes.js';
import type { DecisionLog, LabelFact, LoggedDecision } from '../../src/ports/decision-log.js';

export interface DecisionLogFactory {
  /**
   * A fresh, empty log keeping decisions `horizonMs`, whose clock reads `now()`; `elapse` lets the store's time
   * pass. Decision times in the suite are near the real time, as the Redis store expires keys on its own clock.
   */
  create(horizonMs: number): Promise<{ log: DecisionLog; elapse(ms: number): Promise<void> }>;
  teardown?(): Promise<void>;
}

const MODEL = 'fraudscore';
const DAY = 86_400_000;
const HOUR = 3_600_000;
/** No decision day has matured. */
const NOT_MATURED = -1;

/** The one suite every DecisionLog implementation must pass. */
export function decisionLogConformance(name: string, factory: DecisionLogFactory): void {
  describe(`DecisionLog conformance: ${name}`, () => {
    afterAll(async () => factory.teardown?.());
    const t0 = Date.now() - 2 * HOUR;
    const active = (score: number, at = t0): LoggedDecision => ({
      version: '1',
      role: 'active',
      score,
      decision: score >= 0.9 ? 'decline' : score >= 0.5 ? 'review' : 'approve',
      at,
    });
    const shadow = (score: number, at = t0): LoggedDecision => ({
      ...active(score, at),
      version: '2',
      role: 'shadow',
    });
    const label = (id: string, fraud: boolean, labelledAt = t0 + 3 * HOUR): LabelFact => ({
      transactionId: id,
      fraud,
      transactionAt: t0 - 1000,
      labelledAt,
    });

    it('joins a label with every version that scored the transaction, and counts it once', async () => {
      const { log } = await factory.create(120 * DAY);
      await log.record(MODEL, [
        { transactionId: 't1', decisions: [active(0.95)] },
        { transactionId: 't2', decisions: [active(0.2)] },
      ]);
      await log.record(MODEL, [{ transactionId: 't1', decisions: [shadow(0.4)] }]);
      expect(await log.versions(MODEL)).toEqual(
        new Map([
          ['1', 'active'],
          ['2', 'shadow'],
        ]),
      );
      const [r1, r2] = await log.label(MODEL, [label('t1', true), label('t2', false)]);
      expect(r1).toEqual({
        unscored: false,
        versions: expect.arrayContaining([
          { version: '1', role: 'active', decision: 'decline', outcome: 'new' },
          { version: '2', role: 'shadow', decision: 'approve', outcome: 'new' },
        ]),
      });
      expect(r2).toEqual({
        unscored: false,
        versions: [{ version: '1', role: 'active', decision: 'approve', outcome: 'new' }],
      });
      const c1 = await log.counts(MODEL, '1', 0, NOT_MATURED);
      expect(c1.confusion).toEqual({
        approve: { fraud: 0, legit: 1 },
        review: { fraud: 0, legit: 0 },
        decline: { fraud: 1, legit: 0 },
      });
      expect([c1.explicit, c1.matured]).toEqual([2, 0]);
      expect(c1.fraud).toEqual(new Map([[binOf(0.95), 1]]));
      expect(c1.legit).toEqual(new Map([[binOf(0.2), 1]]));
      expect(c1.latencyHours).toEqual(new Map([[3, 2]]));
      const c2 = await log.counts(MODEL, '2', 0, NOT_MATURED);
      expect(c2.fraud).toEqual(new Map([[binOf(0.4), 1]]));
      expect(await log.labelled(MODEL, '2', 0)).toEqual(new Map([['t1', { fraud: true, score: 0.4 }]]));
      expect(await log.labelled(MODEL, '1', 0)).toEqual(
        new Map([
          ['t1', { fraud: true, score: 0.95 }],
          ['t2', { fraud: false, score: 0.2 }],
        ]),
      );
    });

    it('records every entry of a large batch, one or two decisions each', async () => {
      const { log } = await factory.create(120 * DAY);
      // More entries than a store may send in one call, every third with a shadow decision too.
      const entries = Array.from({ length: 150 }, (_, i) => ({
        transactionId: `b${i}`,
        decisions: i % 3 === 0 ? [active(0.95), shadow(0.2)] : [active(0.2)],
      }));
      await log.record(MODEL, entries);
      const results = await log.label(
        MODEL,
        entries.map((e) => label(e.transactionId, true)),
      );
      expect(results.filter((r) => r.unscored)).toEqual([]);
      expect(results.map((r) => (r.unscored ? 0 : r.versions.length))).toEqual(
        entries.map((e) => e.decisions.length),
      );
      const c1 = await log.counts(MODEL, '1', 0, NOT_MATURED);
      expect(c1.fraud).toEqual(
        new Map([
          [binOf(0.95), 50],
          [binOf(0.2), 100],
        ]),
      );
      const c2 = await log.counts(MODEL, '2', 0, NOT_MATURED);
      expect(c2.fraud).toEqual(new Map([[binOf(0.2), 50]]));
    });
    it('a redelivered label changes nothing; a corrected one moves the counts once', async () => {
      const { log } = await factory.create(120 * DAY);
      await log.record(MODEL, [{ transactionId: 'x', decisions: [active(0.95), shadow(0.3)] }]);
      await log.label(MODEL, [label('x', true)]);
      const once = await log.counts(MODEL, '1', 0, NOT_MATURED);
      const [dup] = await log.label(MODEL, [label('x', true, t0 + 9 * HOUR)]);
      expect(dup).toMatchObject({ versions: [{ outcome: 'duplicate' }, { outcome: 'duplicate' }] });
      expect(await log.counts(MODEL, '1', 0, NOT_MATURED)).toEqual(once);
      const [fix] = await log.label(MODEL, [label('x', false, t0 + 20 * HOUR)]);
      expect(fix).toMatchObject({ versions: [{ outcome: 'corrected' }, { outcome: 'corrected' }] });
      await log.label(MODEL, [label('x', false, t0 + 21 * HOUR)]);
      const fixed = await log.counts(MODEL, '1', 0, NOT_MATURED);
      expect(fixed.confusion.decline).toEqual({ fraud: 0, legit: 1 });
      expect(fixed.fraud).toEqual(new Map());
      expect(fixed.legit).toEqual(new Map([[binOf(0.95), 1]]));
      // The latency is that of the first verdict.
      expect([fixed.explicit, fixed.latencyHours]).toEqual([1, new Map([[3, 1]])]);
      expect((await log.labelled(MODEL, '2', 0)).get('x')).toEqual({ fraud: false, score: 0.3 });
    });

    it('counts a label for an unscored transaction once, as unscored', async () => {
      const { log } = await factory.create(120 * DAY);
      expect(await log.label(MODEL, [label('never', true), label('never', true)])).toEqual([
        { unscored: true, outcome: 'new' },
        { unscored: true, outcome: 'duplicate' },
      ]);
      await log.label(MODEL, [label('never', false), label('other', false)]);
      expect(await log.unscored(MODEL)).toBe(2);
      expect(await log.unscored('another-model')).toBe(0);
    });

    it('matures a decision day: its unlabelled decisions count as legitimate; a later fraud label moves one', async () => {
      const { log } = await factory.create(120 * DAY);
      const today = Math.floor(t0 / DAY);
      await log.record(MODEL, [
        { transactionId: 'm1', decisions: [active(0.6)] },
        { transactionId: 'm2', decisions: [active(0.7)] },
        { transactionId: 'm3', decisions: [active(0.8)] },
        { transactionId: 'm4', decisions: [active(0.1)] },
      ]);
      await log.label(MODEL, [label('m3', true)]);
      let c = await log.counts(MODEL, '1', 0, today - 1);
      expect([c.explicit, c.matured]).toEqual([1, 0]);
      expect(c.confusion.review).toEqual({ fraud: 1, legit: 0 });
      c = await log.counts(MODEL, '1', 0, today);
      expect([c.explicit, c.matured]).toEqual([1, 3]);
      expect(c.confusion.review).toEqual({ fraud: 1, legit: 2 });
      expect(c.confusion.approve).toEqual({ fraud: 0, legit: 1 });
      expect(c.legit).toEqual(
        new Map([
          [binOf(0.6), 1],
          [binOf(0.7), 1],
          [binOf(0.1), 1],
        ]),
      );
      // m2 matured, then turns out a fraud: from matured non-fraud to explicit fraud, once.
      const [late] = await log.label(MODEL, [label('m2', true)]);
      expect(late).toMatchObject({ versions: [{ outcome: 'new' }] });
      await log.label(MODEL, [label('m2', true)]);
      c = await log.counts(MODEL, '1', 0, today);
      expect([c.explicit, c.matured]).toEqual([2, 2]);
      expect(c.confusion.review).toEqual({ fraud: 2, legit: 1 });
      expect(c.legit).toEqual(
        new Map([
          [binOf(0.6), 1],
          [binOf(0.1), 1],
        ]),
      );
      // An explicit non-fraud verdict on m4 replaces its matured one.
      await log.label(MODEL, [label('m4', false)]);
      c = await log.counts(MODEL, '1', 0, today);
      expect([c.explicit, c.matured]).toEqual([3, 1]);
      expect(c.confusion.approve).toEqual({ fraud: 0, legit: 1 });
    });

    it('reads outcomes from a decision day on', async () => {
      const { log } = await factory.create(120 * DAY);
      const today = Math.floor(t0 / DAY);
      await log.record(MODEL, [
        { transactionId: 'old', decisions: [active(0.9, (today - 3) * DAY + HOUR)] },
        { transactionId: 'new', decisions: [active(0.9, today * DAY + HOUR)] },
      ]);
      await log.label(MODEL, [label('old', true), label('new', true)]);
      expect((await log.counts(MODEL, '1', today - 3, NOT_MATURED)).explicit).toBe(2);
      expect((await log.counts(MODEL, '1', today, NOT_MATURED)).explicit).toBe(1);
      expect([...(await log.labelled(MODEL, '1', today)).keys()]).toEqual(['new']);
    });

    it('forgets decisions after the horizon: a later label finds none', async () => {
      const { log, elapse } = await factory.create(300);
      await log.record(MODEL, [{ transactionId: 'gone', decisions: [active(0.9, Date.now())] }]);
      await elapse(600);
      expect(await log.label(MODEL, [label('gone', true)])).toEqual([{ unscored: true, outcome: 'new' }]);
    });
  });
}
