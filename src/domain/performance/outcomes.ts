import type { Decision } from '../scoring/decision.js';

/**
 * Outcome histograms bin scores by their logit, in steps of 1e-4 (clamped to ±50, scores below 2e-22 or above
 * 1 − 2e-22): two scores share a bin only when their odds differ by less than 0.01 %, so a model whose scores pile
 * up near 0 or 1 (a saturated ensemble: 1e-9 against 3e-9) keeps them apart, where bins of the score itself
 * would not. A shared bin counts its fraud/non-fraud pairs as ties (half a pair each), so the histogram AUC
 * differs from the exact one by at most half the share of fraud/non-fraud pairs that close — far below 0.001
 * unless the scores themselves tie, and then scikit-learn ties them too. Bins are stored sparsely: only the bins
 * scores fall in cost memory (at most one per labelled decision).
 */
export const LOGIT_STEP = 1e-4;
export const LOGIT_LIMIT = 50;

export function binOf(score: number): number {
  if (Number.isNaN(score)) return 0;
  const p = Math.min(1, Math.max(0, score));
  const logit = Math.log(p) - Math.log1p(-p);
  const clamped = Math.min(LOGIT_LIMIT, Math.max(-LOGIT_LIMIT, logit));
  return Math.round(clamped / LOGIT_STEP);
}

/** One character per decision in the compact records. */
export const DECISION_CODE: Record<Decision, string> = { approve: 'a', review: 'r', decline: 'd' };
export const DECISION_OF: Record<string, Decision> = { a: 'approve', r: 'review', d: 'decline' };

/** The role a version played when it scored a transaction. */
export type DecisionRole = 'active' | 'canary' | 'shadow';
export const ROLE_CODE: Record<DecisionRole, string> = { active: 'A', canary: 'C', shadow: 'S' };
export const ROLE_OF: Record<string, DecisionRole> = { A: 'active', C: 'canary', S: 'shadow' };

/** What one model version's labelled outcomes add up to (over the decision days asked for). */
export interface OutcomeCounts {
  /** Score bin → outcomes that were fraud. */
  readonly fraud: Map<number, number>;
  /** Score bin → outcomes that were not fraud (explicit verdicts and matured decisions). */
  readonly legit: Map<number, number>;
  /** Decision → outcomes that were fraud / not fraud. */
  readonly confusion: Record<Decision, { fraud: number; legit: number }>;
  /** Outcomes from an explicit label, and decisions that matured unlabelled into `legit`. */
  explicit: number;
  matured: number;
  /** Whole hours from decision to its first explicit label → labels. */
  readonly latencyHours: Map<number, number>;
}

export function emptyCounts(): OutcomeCounts {
  return {
    fraud: new Map(),
    legit: new Map(),
    confusion: {
      approve: { fraud: 0, legit: 0 },
      review: { fraud: 0, legit: 0 },
      decline: { fraud: 0, legit: 0 },
    },
    explicit: 0,
    matured: 0,
    latencyHours: new Map(),
  };
}

export function bump(map: Map<number, number>, key: number, by: number): void {
  const v = (map.get(key) ?? 0) + by;
  if (v === 0) map.delete(key);
  else map.set(key, v);
}

/**
 * The counter fields both stores use (a Redis hash per version and decision day, a Map in memory):
 * `f<bin>` / `n<bin>` fraud / non-fraud outcomes per score bin, `c<decision code><0|1>` the confusion counts,
 * `e` explicit and `m` matured outcomes, `h<hours>` label latency.
 */
export function addField(into: OutcomeCounts, field: string, value: number): void {
  const kind = field[0];
  if (kind === 'f') bump(into.fraud, Number(field.slice(1)), value);
  else if (kind === 'n') bump(into.legit, Number(field.slice(1)), value);
  else if (kind === 'h') bump(into.latencyHours, Number(field.slice(1)), value);
  else if (kind === 'c') {
    const d = DECISION_OF[field[1]!];
    if (d) into.confusion[d][field[2] === '1' ? 'fraud' : 'legit'] += value;
  } else if (field === 'e') into.explicit += value;
  else if (field === 'm') into.matured += value;
}

/** The counter changes of one outcome (+1) or of taking one back (-1). */
export function outcomeFields(o: {
  bin: number;
  decision: Decision;
  fraud: boolean;
  matured?: boolean;
}): string[] {
  return [
    `${o.fraud ? 'f' : 'n'}${o.bin}`,
    `c${DECISION_CODE[o.decision]}${o.fraud ? 1 : 0}`,
    o.matured ? 'm' : 'e',
  ];
}

/**
 * The compact record of one version's decision: role and decision codes, the decision time in base 36 and the
 * score to 9 significant digits (a float32 model's output exactly), e.g. `Ad1k2j3h4g5:0.0123456789`.
 */
export function packDecision(d: {
  role: DecisionRole;
  decision: Decision;
  at: number;
  score: number;
}): string {
  return `${ROLE_CODE[d.role]}${DECISION_CODE[d.decision]}${Math.round(d.at).toString(36)}:${Number(d.score.toPrecision(9))}`;
}

export function unpackDecision(
  packed: string,
): { role: DecisionRole; decision: Decision; at: number; score: number } | undefined {
  const role = ROLE_OF[packed[0]!];
  const decision = DECISION_OF[packed[1]!];
  const colon = packed.indexOf(':');
  if (!role || !decision || colon < 0) return undefined;
  return {
    role,
    decision,
    at: Number.parseInt(packed.slice(2, colon), 36),
    score: Number(packed.slice(colon + 1)),
  };
}

/** A pending (unlabelled) decision's member in its version's maturity queue: decision code, score bin, id. */
export function pendingMember(decision: Decision, bin: number, transactionId: string): string {
  return `${DECISION_CODE[decision]}${bin}|${transactionId}`;
}

export function parsePending(member: string): { decision: Decision; bin: number; transactionId: string } {
  const bar = member.indexOf('|');
  return {
    decision: DECISION_OF[member[0]!]!,
    bin: Number(member.slice(1, bar)),
    transactionId: member.slice(bar + 1),
  };
}

/** Whole hours from a decision to its label (0 for a label dated before the decision). */
export function latencyHours(labelledAt: number, decidedAt: number): number {
  return Math.max(0, Math.floor((labelledAt - decidedAt) / 3_600_000));
}
