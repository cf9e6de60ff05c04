import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { comparePaired, compareUnpaired } from '../../../src/domain/performance/compare.js';
import { delongPaired, delongUnpaired, normalSf } from '../../../src/domain/performance/delong.js';
import { medianLatencyHours, rankMetrics, versionMetrics } from '../../../src/domain/performance/metrics.js';
import { binOf, bump, emptyCounts } from '../../../src/domain/performance/outcomes.js';

/** Seeded scores with scikit-learn's metrics and the paper's O(m n) DeLong: make_reference.py. */
interface Case {
  name: string;
  y: number[];
  a: number[];
  b: number[];
  metrics: Record<'a' | 'b', { auc: number; average_precision: number }>;
  delong: { auc_a: number; auc_b: number; difference: number; variance: number; p_value: number };
}
const reference = JSON.parse(readFileSync('test/fixtures/performance/reference.json', 'utf8')) as {
  paired: Case[];
  unpaired: {
    y_a: number[];
    a: number[];
    y_b: number[];
    b: number[];
    delong: Case['delong'];
  };
};

const histogram = (y: number[], s: number[]) => {
  const c = emptyCounts();
  y.forEach((label, i) => bump(label ? c.fraud : c.legit, binOf(s[i]!), 1));
  return c;
};

describe('live performance metrics against the Python reference', () => {
  for (const c of reference.paired) {
    it(`${c.name}: histogram AUC and AP within 0.001 of scikit-learn; DeLong as the paper`, () => {
      for (const k of ['a', 'b'] as const) {
        const m = rankMetrics(histogram(c.y, c[k]));
        expect(Math.abs(m.auc! - c.metrics[k].auc)).toBeLessThan(0.001);
        expect(Math.abs(m.average_precision! - c.metrics[k].average_precision)).toBeLessThan(0.001);
      }
      const d = delongPaired(
        c.a,
        c.b,
        c.y.map((v) => v === 1),
      );
      expect(d.aucA).toBeCloseTo(c.delong.auc_a, 12);
      expect(d.aucB).toBeCloseTo(c.delong.auc_b, 12);
      expect(d.variance).toBeCloseTo(c.delong.variance, 12);
      expect(d.pValue).toBeCloseTo(c.delong.p_value, 9);
    });
  }

  it('unpaired (a canary): the two variances add up, as the reference', () => {
    const u = reference.unpaired;
    const d = delongUnpaired(
      u.a.map((score, i) => ({ score, fraud: u.y_a[i] === 1 })),
      u.b.map((score, i) => ({ score, fraud: u.y_b[i] === 1 })),
    );
    expect(d.difference).toBeCloseTo(u.delong.difference, 12);
    expect(d.variance).toBeCloseTo(u.delong.variance, 12);
    expect(d.pValue).toBeCloseTo(u.delong.p_value, 9);
  });

  it('identical versions: zero variance, p = 1, no significant difference', () => {
    const c = reference.paired.find((x) => x.name === 'identical versions')!;
    const pairs = c.a.map((a, i) => ({ a, b: a, fraud: c.y[i] === 1 }));
    const r = comparePaired('1', '2', pairs, { alpha: 0.05, minFrauds: 30 });
    expect(r).toMatchObject({
      paired: true,
      auc_difference: 0,
      ci95: [0, 0],
      p_value: 1,
      verdict: 'no_significant_difference',
      method: 'delong_paired',
    });
  });

  it('a much worse challenger is `worse`, a better one `better`; too few frauds is `insufficient_data`', () => {
    const c = reference.paired.find((x) => x.name === 'continuous, a much worse challenger')!;
    const pairs = c.a.map((a, i) => ({ a, b: c.b[i]!, fraud: c.y[i] === 1 }));
    const o = { alpha: 0.05, minFrauds: 30 };
    const worse = comparePaired('1', '2', pairs, o);
    expect(worse.verdict).toBe('worse');
    expect(worse.p_value!).toBeLessThan(0.05);
    expect(worse.ci95![1]).toBeLessThan(0);
    const swapped = comparePaired(
      '2',
      '1',
      pairs.map((p) => ({ ...p, a: p.b, b: p.a })),
      o,
    );
    expect(swapped.verdict).toBe('better');
    const few = comparePaired('1', '2', pairs, { ...o, minFrauds: 1_000 });
    expect(few).toMatchObject({ verdict: 'insufficient_data', p_value: null, auc_difference: null });
    const u = reference.unpaired;
    const canary = compareUnpaired(
      '1',
      '3',
      u.a.map((score, i) => ({ score, fraud: u.y_a[i] === 1 })),
      u.b.map((score, i) => ({ score, fraud: u.y_b[i] === 1 })),
      o,
    );
    expect(canary).toMatchObject({ paired: false, method: 'delong_unpaired', verdict: 'worse' });
  });

  it('the normal tail matches known values', () => {
    expect(normalSf(0)).toBeCloseTo(0.5, 15);
    expect(2 * normalSf(1.959963984540054)).toBeCloseTo(0.05, 12);
    expect(normalSf(5)).toBeCloseTo(2.866515718791939e-7, 18);
    expect(normalSf(-1)).toBeCloseTo(0.8413447460685429, 14);
  });

  it('precision and recall at the thresholds come from the decisions; latency from whole hours', () => {
    const c = emptyCounts();
    c.confusion.decline.fraud = 8;
    c.confusion.decline.legit = 2;
    c.confusion.review.fraud = 4;
    c.confusion.review.legit = 6;
    c.confusion.approve.fraud = 4;
    c.confusion.approve.legit = 76;
    c.latencyHours.set(1, 3);
    c.latencyHours.set(30, 2);
    const m = versionMetrics(c);
    expect(m).toMatchObject({
      labelled: 100,
      frauds: 16,
      precision_at_decline: 0.8,
      recall_at_decline: 0.5,
      precision_at_review: 0.6,
      recall_at_review: 0.75,
      label_latency_p50_hours: 1.5,
    });
    expect(medianLatencyHours(new Map())).toBeNull();
  });
});
