/**
 * DeLong's test for the difference of two AUCs (DeLong, DeLong & Clarke-Pearson, Biometrics 1988), computed the
 * fast way of Sun & Xu (IEEE Signal Processing Letters 2014): each AUC and its structural components come from
 * midranks, O(n log n). Paired (two versions scored the same transactions) uses the covariance of the two AUCs;
 * unpaired (a canary's customers against the active version's) adds two independent variances.
 */

export interface Labelled {
  readonly score: number;
  readonly fraud: boolean;
}

export interface AucEstimate {
  readonly auc: number;
  /** Structural components: V10 per fraud, V01 per non-fraud. */
  readonly v10: Float64Array;
  readonly v01: Float64Array;
}

/** Midranks (1-based, ties share their average rank) of `xs`. */
export function midranks(xs: ArrayLike<number>): Float64Array {
  const n = xs.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => xs[a]! - xs[b]!);
  const out = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j < n && xs[order[j]!] === xs[order[i]!]) j++;
    const rank = (i + j + 1) / 2;
    for (let k = i; k < j; k++) out[order[k]!] = rank;
    i = j;
  }
  return out;
}

/** AUC with its structural components: frauds' scores `pos`, non-frauds' `neg`. */
export function aucComponents(pos: ArrayLike<number>, neg: ArrayLike<number>): AucEstimate {
  const m = pos.length;
  const n = neg.length;
  const all = new Float64Array(m + n);
  for (let i = 0; i < m; i++) all[i] = pos[i]!;
  for (let j = 0; j < n; j++) all[m + j] = neg[j]!;
  const tz = midranks(all);
  const tx = midranks(pos);
  const ty = midranks(neg);
  let sum = 0;
  const v10 = new Float64Array(m);
  const v01 = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    sum += tz[i]!;
    v10[i] = (tz[i]! - tx[i]!) / n;
  }
  for (let j = 0; j < n; j++) v01[j] = 1 - (tz[m + j]! - ty[j]!) / m;
  return { auc: (sum - (m * (m + 1)) / 2) / (m * n), v10, v01 };
}

function covariance(a: Float64Array, b: Float64Array): number {
  const n = a.length;
  if (n < 2) return 0;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i]!;
    mb += b[i]!;
  }
  ma /= n;
  mb /= n;
  let s = 0;
  for (let i = 0; i < n; i++) s += (a[i]! - ma) * (b[i]! - mb);
  return s / (n - 1);
}

/** Variance of one AUC estimate (S10/m + S01/n). */
export function aucVariance(e: AucEstimate): number {
  return covariance(e.v10, e.v10) / e.v10.length + covariance(e.v01, e.v01) / e.v01.length;
}

export interface AucDifference {
  /** AUC of `b` minus AUC of `a`. */
  readonly difference: number;
  readonly aucA: number;
  readonly aucB: number;
  readonly variance: number;
  readonly ci95: readonly [number, number];
  readonly pValue: number;
}

const Z95 = 1.959963984540054;

function difference(aucA: number, aucB: number, variance: number): AucDifference {
  const d = aucB - aucA;
  const sd = Math.sqrt(Math.max(0, variance));
  // Zero variance: the two versions rank every pair alike (identical scores); nothing to tell apart.
  const pValue = sd > 0 ? 2 * normalSf(Math.abs(d) / sd) : d === 0 ? 1 : 0;
  return { difference: d, aucA, aucB, variance, ci95: [d - Z95 * sd, d + Z95 * sd], pValue };
}

/** Paired: `a[k]` and `b[k]` are the two versions' scores of one transaction whose label is `fraud[k]`. */
export function delongPaired(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  fraud: ArrayLike<boolean>,
): AucDifference {
  const split = (s: ArrayLike<number>) => {
    const pos: number[] = [];
    const neg: number[] = [];
    for (let i = 0; i < s.length; i++) (fraud[i] ? pos : neg).push(s[i]!);
    return aucComponents(pos, neg);
  };
  const ea = split(a);
  const eb = split(b);
  const m = ea.v10.length;
  const n = ea.v01.length;
  const sAA = covariance(ea.v10, ea.v10) / m + covariance(ea.v01, ea.v01) / n;
  const sBB = covariance(eb.v10, eb.v10) / m + covariance(eb.v01, eb.v01) / n;
  const sAB = covariance(ea.v10, eb.v10) / m + covariance(ea.v01, eb.v01) / n;
  return difference(ea.auc, eb.auc, sAA + sBB - 2 * sAB);
}

/** Unpaired: two independent samples (a canary's customers against the active version's). */
export function delongUnpaired(a: readonly Labelled[], b: readonly Labelled[]): AucDifference {
  const est = (s: readonly Labelled[]) =>
    aucComponents(
      s.filter((x) => x.fraud).map((x) => x.score),
      s.filter((x) => !x.fraud).map((x) => x.score),
    );
  const ea = est(a);
  const eb = est(b);
  return difference(ea.auc, eb.auc, aucVariance(ea) + aucVariance(eb));
}

/** Upper tail of the standard normal, erfc(z/√2)/2: erf's series below 2.5, erfc's continued fraction above. */
export function normalSf(z: number): number {
  return erfc(z / Math.SQRT2) / 2;
}

function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < 2.5) return 1 - erfSeries(x);
  return erfcContinuedFraction(x);
}

function erfSeries(x: number): number {
  // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
  let term = x;
  let sum = x;
  const x2 = x * x;
  for (let n = 1; n < 200; n++) {
    term *= -x2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

function erfcContinuedFraction(x: number): number {
  // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …)))) evaluated backwards (Lentz would do too).
  let f = x;
  for (let k = 60; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}
