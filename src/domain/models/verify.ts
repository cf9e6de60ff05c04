import { featureSetId } from '../features/definition.js';
import type { Combine } from './ensemble.js';
import type { Manifest } from './manifest.js';

/** A check that failed, with the sentence an operator needs; the caller wraps it in a ModelLoadError. */
export class VerifyError extends Error {
  override name = 'VerifyError';

  constructor(
    readonly code: 'unknown_feature_set' | 'unknown_feature' | 'golden_mismatch' | 'warmup_failed',
    message: string,
  ) {
    super(message);
  }
}

export const GOLDEN_TOLERANCE = 1e-5;

/** The manifest's feature set must be known and every input one of its features. */
export function checkFeatures<S extends { readonly names: readonly string[] }>(
  manifest: Pick<Manifest, 'feature_set' | 'inputs'>,
  sets: ReadonlyMap<string, S>,
): S {
  const id = featureSetId(manifest.feature_set);
  const set = sets.get(id);
  if (!set)
    throw new VerifyError(
      'unknown_feature_set',
      `feature set ${id} is not known (known: ${[...sets.keys()].join(', ') || 'none'})`,
    );
  const names = new Set(set.names);
  for (const input of manifest.inputs)
    if (!names.has(input)) throw new VerifyError('unknown_feature', `feature ${input} is not in ${id}`);
  return set;
}

/** The golden inputs as one row-major batch. */
export function goldenBatch(manifest: Pick<Manifest, 'golden' | 'inputs'>): Float32Array {
  const width = manifest.inputs.length;
  const rows = new Float32Array(manifest.golden.length * width);
  manifest.golden.forEach((g, r) => {
    rows.set(g.inputs, r * width);
  });
  return rows;
}

/** `outputs[m][r]` is member m's score for golden example r; each member and the ensemble must match. */
export function checkGolden(
  manifest: Pick<Manifest, 'golden' | 'members'>,
  outputs: readonly ArrayLike<number>[],
  combine: Combine,
  tolerance = GOLDEN_TOLERANCE,
): void {
  const members = new Float64Array(manifest.members.length);
  manifest.golden.forEach((g, r) => {
    manifest.members.forEach((m, i) => {
      const got = outputs[i]![r]!;
      members[i] = got;
      if (!(Math.abs(got - g.members[i]!) <= tolerance))
        throw new VerifyError(
          'golden_mismatch',
          `golden example ${r}: member ${m.name} gave ${fmt(got)}, manifest says ${fmt(g.members[i]!)}`,
        );
    });
    const score = combine(members);
    if (!(Math.abs(score - g.score) <= tolerance))
      throw new VerifyError(
        'golden_mismatch',
        `golden example ${r}: ensemble gave ${fmt(score)}, manifest says ${fmt(g.score)}`,
      );
  });
}

/**
 * `count` varied rows for warm-up: the golden inputs in turn, each nudged by a different fraction of a standard
 * deviation, so the first real requests do not pay for first-run allocations of new shapes.
 */
export function warmupBatch(
  manifest: Pick<Manifest, 'golden' | 'inputs' | 'reference'>,
  count: number,
): Float32Array {
  const width = manifest.inputs.length;
  const std = manifest.inputs.map((name) => manifest.reference.moments[name]?.std ?? 0);
  const rows = new Float32Array(count * width);
  for (let r = 0; r < count; r++) {
    const g = manifest.golden[r % manifest.golden.length]!.inputs;
    for (let i = 0; i < width; i++)
      rows[r * width + i] = g[i]! + (((r * 7 + i * 13) % 5) - 2) * 0.25 * std[i]!;
  }
  return rows;
}

/** Every member score must be a probability. */
export function checkProbabilities(member: string, scores: ArrayLike<number>, rows: number): void {
  if (scores.length !== rows)
    throw new VerifyError(
      'warmup_failed',
      `member ${member} returned ${scores.length} scores for ${rows} rows`,
    );
  for (let r = 0; r < rows; r++) {
    const p = scores[r]!;
    if (!(p >= 0 && p <= 1))
      throw new VerifyError(
        'warmup_failed',
        `member ${member} gave ${p} for row ${r} of ${rows}, not a probability`,
      );
  }
}

function fmt(v: number): string {
  return String(Number(v.toPrecision(6)));
}
