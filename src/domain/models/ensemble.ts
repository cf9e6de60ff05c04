import type { Manifest } from './manifest.js';

/** Member P(fraud) values, in manifest member order → the ensemble's P(fraud). */
export type Combine = (members: ArrayLike<number>) => number;

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

/** Compiled once per loaded version so the per-row path does no lookups and no allocation. */
export function compileCombiner(manifest: Pick<Manifest, 'members' | 'combiner'>): Combine {
  const c = manifest.combiner;
  const n = manifest.members.length;
  if (c.kind === 'weighted_mean') {
    const weights = Float64Array.from(manifest.members, (m) => m.weight);
    const total = weights.reduce((a, b) => a + b, 0);
    if (!(total > 0)) throw new Error('weighted_mean needs at least one member with a positive weight');
    return (p) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += weights[i]! * p[i]!;
      return s / total;
    };
  }
  if (c.coefficients.length !== n) throw new Error('logistic_stack needs one coefficient per member');
  const coefficients = Float64Array.from(c.coefficients);
  const lo = c.clip;
  const hi = 1 - c.clip;
  return (p) => {
    let z = c.intercept;
    for (let i = 0; i < n; i++) {
      const q = Math.min(hi, Math.max(lo, p[i]!));
      z += coefficients[i]! * Math.log(q / (1 - q));
    }
    return sigmoid(z);
  };
}
