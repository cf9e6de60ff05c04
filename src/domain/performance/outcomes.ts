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
  /** Every decision recorded, labelled or not: score bin → decisions, and per decision. */
  readonly decided: Map<number, number>;
  readonly decidedBy: Record<Decision, number>;
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
    decided: new Map(),
    decidedBy: { approve: 0, review: 0, decline: 0 },
  };
}

export function bump(map: Map<number, number>, key: number, by: number): void {
  const v = (map.get(key) ?? 0) + by;
  if (v === 0) map.delete(key);
  else map.set(key, v);
}

/**
 * The counter fields both stores keep per version and decision day (a Redis hash, a Map in memory):
 * `f<bin>` / `n<bin>` explicit fraud / non-fraud outcomes per score bin, `c<decision code><0|1>` their confusion
 * counts, `e` explicit outcomes, `h<hours>` label latency; and, counted when the decision is recorded,
 * `d<bin>` / `D<decision code>` every decision made, labelled or not.
 */
export function addField(into: OutcomeCounts, field: string, value: number): void {
  const kind = field[0];
  if (kind === 'f') bump(into.fraud, Number(field.slice(1)), value);
  else if (kind === 'n') bump(into.legit, Number(field.slice(1)), value);
  else if (kind === 'h') bump(into.latencyHours, Number(field.slice(1)), value);
  else if (kind === 'd') bump(into.decided, Number(field.slice(1)), value);
  else if (kind === 'D') {
    const d = DECISION_OF[field[1]!];
    if (d) into.decidedBy[d] += value;
  } else if (kind === 'c') {
    const d = DECISION_OF[field[1]!];
    if (d) into.confusion[d][field[2] === '1' ? 'fraud' : 'legit'] += value;
  } else if (field === 'e') into.explicit += value;
}

/** The counter changes of one explicit outcome (+1), or of taking it back (-1). */
export function outcomeFields(o: { bin: number; decision: Decision; fraud: boolean }): string[] {
  return [`${o.fraud ? 'f' : 'n'}${o.bin}`, `c${DECISION_CODE[o.decision]}${o.fraud ? 1 : 0}`];
}

/** The counter changes of one recorded decision. */
export function decisionFields(o: { bin: number; decision: Decision }): string[] {
  return [`d${o.bin}`, `D${DECISION_CODE[o.decision]}`];
}

/**
 * A matured decision day: every decision of it without an explicit label counts as a non-fraud outcome — per
 * score bin, the decisions made less the explicit outcomes, and the same per decision. Nothing per decision is
 * kept for it: a label that arrives later replaces an implicit non-fraud by an explicit outcome on its own.
 */
export function matureDay(c: OutcomeCounts): void {
  for (const [bin, n] of c.decided) {
    const implicit = n - (c.fraud.get(bin) ?? 0) - (c.legit.get(bin) ?? 0);
    if (implicit > 0) {
      bump(c.legit, bin, implicit);
      c.matured += implicit;
    }
  }
  for (const d of ['approve', 'review', 'decline'] as const) {
    const implicit = c.decidedBy[d] - c.confusion[d].fraud - c.confusion[d].legit;
    if (implicit > 0) c.confusion[d].legit += implicit;
  }
}

/** Adds one day's counts into a total. */
export function mergeCounts(into: OutcomeCounts, day: OutcomeCounts): void {
  for (const [b, n] of day.fraud) bump(into.fraud, b, n);
  for (const [b, n] of day.legit) bump(into.legit, b, n);
  for (const [h, n] of day.latencyHours) bump(into.latencyHours, h, n);
  for (const [b, n] of day.decided) bump(into.decided, b, n);
  for (const d of ['approve', 'review', 'decline'] as const) {
    into.confusion[d].fraud += day.confusion[d].fraud;
    into.confusion[d].legit += day.confusion[d].legit;
    into.decidedBy[d] += day.decidedBy[d];
  }
  into.explicit += day.explicit;
  into.matured += day.matured;
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

/** Whole hours from a decision to its label (0 for a label dated before the decision). */
export function latencyHours(labelledAt: number, decidedAt: number): number {
  return Math.max(0, Math.floor((labelledAt - decidedAt) / 3_600_000));
}
