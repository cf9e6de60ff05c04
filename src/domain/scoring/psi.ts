import type { Histogram, Manifest } from '../models/manifest.js';

/** Proportions below this count as this, so an empty bin on either side gives a large but finite term. */
export const PSI_EPSILON = 1e-4;

/** The manifest's bin of `x`: 0 below edges[0], i for [edges[i−1], edges[i]), edges.length from the last edge up. */
export function binIndex(edges: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Σ (a − e)·ln(a / e) over bins, with a and e the actual and expected proportions. */
export function psi(
  expected: ArrayLike<number>,
  actual: ArrayLike<number>,
  actualTotal: number,
  epsilon = PSI_EPSILON,
): number {
  if (actualTotal <= 0) return 0;
  let sum = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(expected[i]!, epsilon);
    const a = Math.max(actual[i]! / actualTotal, epsilon);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/** PSI of the last `size` observations against a reference histogram; observing is O(log bins), no allocation. */
export class PsiWindow {
  private readonly edges: Float64Array;
  private readonly expected: Float64Array;
  private readonly counts: Uint32Array;
  private readonly ring: Uint16Array | Uint32Array;
  private head = 0;
  private filled = 0;

  constructor(
    reference: Histogram,
    readonly size: number,
    private readonly epsilon = PSI_EPSILON,
  ) {
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError('PSI window size must be a positive integer');
    this.edges = Float64Array.from(reference.edges);
    const total = reference.counts.reduce((a, b) => a + b, 0);
    this.expected = Float64Array.from(reference.counts, (c) => (total > 0 ? c / total : 0));
    this.counts = new Uint32Array(reference.counts.length);
    this.ring = reference.counts.length <= 0xffff ? new Uint16Array(size) : new Uint32Array(size);
  }

  /** NaN has no bin and is ignored. */
  observe(x: number): void {
    if (Number.isNaN(x)) return;
    const bin = binIndex(this.edges, x);
    if (this.filled === this.size) this.counts[this.ring[this.head]!]!--;
    else this.filled++;
    this.ring[this.head] = bin;
    this.counts[bin]!++;
    this.head = this.head + 1 === this.size ? 0 : this.head + 1;
  }

  get count(): number {
    return this.filled;
  }

  /** 0 while the window is empty. */
  value(): number {
    return psi(this.expected, this.counts, this.filled, this.epsilon);
  }
}

export interface DriftSnapshot {
  /** Observations in the window (at most the window size). */
  readonly observations: number;
  readonly score: number;
  readonly features: Readonly<Record<string, number>>;
}

/** One PSI window per model input plus one for the ensemble score, all against the manifest's reference. */
export class DriftMonitor {
  private readonly inputs: readonly string[];
  private readonly windows: PsiWindow[];
  private readonly scores: PsiWindow;

  constructor(manifest: Pick<Manifest, 'inputs' | 'reference'>, size: number) {
    this.inputs = manifest.inputs;
    this.windows = manifest.inputs.map((name) => {
      const h = manifest.reference.features[name];
      if (!h) throw new Error(`no reference histogram for ${name}`);
      return new PsiWindow(h, size);
    });
    this.scores = new PsiWindow(manifest.reference.score, size);
  }

  /** `row` in manifest input order. */
  observe(row: ArrayLike<number>, score: number): void {
    for (let i = 0; i < this.windows.length; i++) this.windows[i]!.observe(row[i]!);
    this.scores.observe(score);
  }

  snapshot(): DriftSnapshot {
    const features: Record<string, number> = {};
    this.inputs.forEach((name, i) => {
      features[name] = this.windows[i]!.value();
    });
    return { observations: this.scores.count, score: this.scores.value(), features };
  }
}
