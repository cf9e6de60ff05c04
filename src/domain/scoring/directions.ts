import type { Manifest } from '../models/manifest.js';

const STEPS = [1, -1, 3, -3] as const;

/**
 * Rows that move one input at a time away from the training means (±1σ and ±3σ), so one batch through the ensemble
 * tells which way each input pushes the score. Run once per loaded version; reason codes use the result.
 */
export function directionProbe(manifest: Pick<Manifest, 'inputs' | 'reference'>): {
  rows: Float32Array;
  count: number;
} {
  const n = manifest.inputs.length;
  const base = manifest.inputs.map((name) => manifest.reference.moments[name]?.mean ?? 0);
  const count = n * STEPS.length;
  const rows = new Float32Array(count * n);
  manifest.inputs.forEach((name, i) => {
    const std = manifest.reference.moments[name]?.std ?? 0;
    STEPS.forEach((step, s) => {
      const offset = (i * STEPS.length + s) * n;
      rows.set(base, offset);
      rows[offset + i] = base[i]! + step * std;
    });
  });
  return { rows, count };
}

/**
 * +1 when raising the input raises the score, −1 when it lowers it. Tree members are often flat near the mean, so a
 * probe that moves nothing falls back to +1 (larger than usual counts as riskier), which suits amounts, counts and rates.
 */
export function directionsFromProbe(inputs: number, scores: ArrayLike<number>): Int8Array {
  const out = new Int8Array(inputs);
  for (let i = 0; i < inputs; i++) {
    const o = i * STEPS.length;
    const delta = scores[o]! - scores[o + 1]! + (scores[o + 2]! - scores[o + 3]!);
    out[i] = delta < 0 ? -1 : 1;
  }
  return out;
}
