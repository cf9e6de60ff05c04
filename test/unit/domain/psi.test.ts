import { describe, expect, it } from 'vitest';
import { binIndex, DriftMonitor, PsiWindow, psi } from '../../../src/domain/scoring/psi.js';
import { rng } from '../../helpers/generate.js';

function lognormal(next: () => number, mu: number, sigma: number): number {
  const z = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  return Math.exp(mu + sigma * z);
}

/** Decile edges and counts of a sample, in the manifest's convention. */
function reference(sample: number[]) {
  const sorted = [...sample].sort((a, b) => a - b);
  const edges = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((d) => sorted[Math.floor((d / 10) * sorted.length)]!);
  const counts = new Array(edges.length + 1).fill(0);
  for (const x of sample) counts[binIndex(edges, x)]++;
  return { edges, counts };
}

describe('binIndex', () => {
  it('puts values in the open outer bins and [edges[i−1], edges[i]) between', () => {
    const edges = [0, 10, 20];
    expect([-5, 0, 5, 10, 19.9, 20, 1e9].map((x) => binIndex(edges, x))).toEqual([0, 1, 1, 2, 2, 3, 3]);
  });
});

describe('psi', () => {
  it('is 0 for identical distributions and finite with empty bins', () => {
    expect(psi([0.5, 0.5], [5, 5], 10)).toBeCloseTo(0, 12);
    expect(Number.isFinite(psi([0.5, 0.5, 0], [0, 5, 5], 10))).toBe(true);
    expect(psi([0.5, 0.5], [0, 0], 0)).toBe(0);
  });
});

describe('PsiWindow', () => {
  const next = rng(42);
  const ref = reference(Array.from({ length: 20_000 }, () => lognormal(next, 3.8, 0.8)));

  it('stays below 0.05 for traffic from the reference distribution', () => {
    const w = new PsiWindow(ref, 5_000);
    for (let i = 0; i < 12_000; i++) w.observe(lognormal(next, 3.8, 0.8));
    expect(w.count).toBe(5_000);
    expect(w.value()).toBeLessThan(0.05);
  });

  it('exceeds 0.2 when amounts triple, and recovers once the window has moved on', () => {
    const w = new PsiWindow(ref, 5_000);
    for (let i = 0; i < 5_000; i++) w.observe(3 * lognormal(next, 3.8, 0.8));
    expect(w.value()).toBeGreaterThan(0.2);
    for (let i = 0; i < 5_000; i++) w.observe(lognormal(next, 3.8, 0.8));
    expect(w.value()).toBeLessThan(0.05);
  });

  it('keeps exactly the last W observations', () => {
    const w = new PsiWindow({ edges: [0, 1], counts: [1, 1, 1] }, 3);
    for (const x of [-1, -1, -1, 0.5, 2, 2]) w.observe(x);
    // window now holds 0.5, 2, 2 → bins [0, 1, 2]
    expect(w.value()).toBeCloseTo(psi([1 / 3, 1 / 3, 1 / 3], [0, 1, 2], 3), 12);
    w.observe(Number.NaN);
    expect(w.count).toBe(3);
  });
});

describe('DriftMonitor', () => {
  it('tracks each input and the score', () => {
    const h = { edges: [0, 1], counts: [0, 10, 0] };
    const d = new DriftMonitor(
      { inputs: ['A', 'B'], reference: { rows: 10, features: { A: h, B: h }, score: h, moments: {} } },
      100,
    );
    for (let i = 0; i < 50; i++) d.observe([0.5, 5], 0.5);
    const s = d.snapshot();
    expect(s.observations).toBe(50);
    expect(s.features.A).toBeCloseTo(0, 12);
    expect(s.features.B).toBeGreaterThan(1);
    expect(s.score).toBeCloseTo(0, 12);
  });
});
