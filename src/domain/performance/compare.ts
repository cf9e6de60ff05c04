import { type AucDifference, delongPaired, delongUnpaired, type Labelled } from './delong.js';

export type Verdict = 'better' | 'worse' | 'no_significant_difference' | 'insufficient_data';

export interface Comparison {
  readonly champion: string;
  readonly challenger: string;
  /** Paired: the challenger (a shadow) scored the champion's transactions; unpaired: other customers' (a canary). */
  readonly paired: boolean;
  /** Labelled transactions compared (paired: scored by both), and the frauds among them. */
  readonly n: number;
  readonly frauds: number;
  /** Challenger AUC minus champion AUC. */
  readonly auc_difference: number | null;
  readonly ci95: readonly [number, number] | null;
  readonly p_value: number | null;
  readonly method: string;
  readonly verdict: Verdict;
}

export interface CompareOptions {
  readonly alpha: number;
  /** Below this many labelled frauds (in the pairs, or in either sample) the verdict is `insufficient_data`. */
  readonly minFrauds: number;
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

function verdictOf(d: AucDifference, alpha: number): Verdict {
  if (d.pValue >= alpha) return 'no_significant_difference';
  return d.difference > 0 ? 'better' : 'worse';
}

function result(
  base: Omit<Comparison, 'auc_difference' | 'ci95' | 'p_value' | 'verdict'>,
  d: AucDifference | undefined,
  o: CompareOptions,
  enough: boolean,
): Comparison {
  if (!d || !enough || !Number.isFinite(d.difference))
    return { ...base, auc_difference: null, ci95: null, p_value: null, verdict: 'insufficient_data' };
  return {
    ...base,
    auc_difference: round(d.difference),
    ci95: [round(d.ci95[0]), round(d.ci95[1])],
    p_value: round(d.pValue),
    verdict: verdictOf(d, o.alpha),
  };
}

/** DeLong's paired test on the transactions both versions scored and that have a label. */
export function comparePaired(
  champion: string,
  challenger: string,
  pairs: readonly { a: number; b: number; fraud: boolean }[],
  o: CompareOptions,
): Comparison {
  const frauds = pairs.filter((p) => p.fraud).length;
  const enough = frauds >= o.minFrauds && pairs.length > frauds;
  const d = enough
    ? delongPaired(
        pairs.map((p) => p.a),
        pairs.map((p) => p.b),
        pairs.map((p) => p.fraud),
      )
    : undefined;
  const base = { champion, challenger, paired: true, n: pairs.length, frauds, method: 'delong_paired' };
  return result(base, d, o, enough);
}

/** DeLong's variance for two independent samples: the champion's labelled transactions and the challenger's. */
export function compareUnpaired(
  champion: string,
  challenger: string,
  a: readonly Labelled[],
  b: readonly Labelled[],
  o: CompareOptions,
): Comparison {
  const fa = a.filter((x) => x.fraud).length;
  const fb = b.filter((x) => x.fraud).length;
  const enough = Math.min(fa, fb) >= o.minFrauds && a.length > fa && b.length > fb;
  const d = enough ? delongUnpaired(a, b) : undefined;
  const base = {
    champion,
    challenger,
    paired: false,
    n: a.length + b.length,
    frauds: fa + fb,
    method: 'delong_unpaired',
  };
  return result(base, d, o, enough);
}
