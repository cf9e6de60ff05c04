import { z } from 'zod';
import { DAY_MS } from '../features/time.js';
import type { Comparison } from '../performance/compare.js';
import { ModelVersionSchema } from './names.js';

/**
 * The promotion policy's record in a model's shared serving state (issue 19): the version it is moving from
 * shadow through canary steps to active, the versions it rolled back (never promoted again by the policy), and
 * the transitions it made, each with the evidence behind it. Kept in the serving state so that a transition and
 * the role change it makes are one compare-and-set, and every replica (and the admin API) sees both.
 */
export const PromotionStageSchema = z.enum(['shadow', 'canary']);
export type PromotionStage = z.infer<typeof PromotionStageSchema>;

export const PromotionTransitionSchema = z.object({
  /** ISO-8601. */
  at: z.string(),
  version: ModelVersionSchema,
  from: z.enum(['eligible', 'shadow', 'canary']),
  to: z.enum(['shadow', 'canary', 'active', 'rolled_back', 'cancelled']),
  /** The canary share after the transition, when `to` is canary. */
  percent: z.number().optional(),
  reason: z.string(),
  /** What justified it: the live comparison, the labelled frauds of the stage, PSI and error rate. */
  evidence: z.record(z.string(), z.unknown()),
  /** The replica that made it. */
  by: z.string(),
});
export type PromotionTransition = z.infer<typeof PromotionTransitionSchema>;

export const PromotionCandidateSchema = z.object({
  version: ModelVersionSchema,
  stage: PromotionStageSchema,
  /** Index into the policy's canary steps, and its share, when in canary. */
  step: z.number().int().min(0).optional(),
  percent: z.number().optional(),
  /** The active version it is judged against; an activation by anyone else cancels the promotion. */
  champion: ModelVersionSchema,
  /** ISO-8601 start of the stage. */
  since: z.string(),
  /**
   * ISO-8601 start of the first whole UTC day of the stage: its evidence is the decisions made from then on. The
   * decision log counts per version and decision day, not per role, so the day the stage began still holds the
   * previous stage's decisions (a shadow's are the champion's own transactions, which would skew a canary's
   * unpaired comparison and let a stage pass on evidence it did not gather).
   */
  evidence_from: z.string(),
});
export type PromotionCandidate = z.infer<typeof PromotionCandidateSchema>;

export const PromotionRecordSchema = z.object({
  candidate: PromotionCandidateSchema.optional(),
  /**
   * The newest version the policy has taken up: it only picks newer ones, so a version it rolled back, or one an
   * operator cancelled or rolled back, is never picked again (and the record stays small).
   */
  picked_through: ModelVersionSchema.optional(),
  /** The last ROLLED_BACK_KEPT versions the policy rolled back, newest last. */
  rolled_back: z.array(z.object({ version: ModelVersionSchema, at: z.string(), reason: z.string() })),
  /** Oldest first; the last HISTORY_KEPT transitions. */
  history: z.array(PromotionTransitionSchema),
});
export type PromotionRecord = z.infer<typeof PromotionRecordSchema>;

export const HISTORY_KEPT = 50;
export const ROLLED_BACK_KEPT = 20;

export const EMPTY_PROMOTION: PromotionRecord = Object.freeze({ rolled_back: [], history: [] });

/** PROMOTION_* configuration. */
export interface PromotionPolicy {
  /** Canary shares in percent, increasing; after the last one the candidate becomes active. */
  readonly canarySteps: readonly number[];
  /** Labelled frauds of the candidate a stage needs (since it began) before it may advance. */
  readonly minFrauds: number;
  /**
   * Non-inferiority margin: a stage advances only when the lower bound of the 95 % interval of the AUC difference
   * (challenger − champion) is at least −maxAucLoss, so a wide interval ("not significantly worse" on little
   * evidence) holds rather than advances.
   */
  readonly maxAucLoss: number;
  /** Score PSI of the candidate above which it is rolled back (0.2: the usual "significant shift"). */
  readonly maxScorePsi: number;
  /** Share of the candidate's inference rows that failed above which it is rolled back… */
  readonly maxErrorRate: number;
  /** …once it ran at least this many rows. */
  readonly minErrorRows: number;
}

/** What the policy knows of a candidate at one tick. */
export interface PromotionEvidence {
  /** The live comparison of the active version (champion) with the candidate (challenger) since the stage began. */
  readonly comparison?: Comparison;
  /** The candidate's explicitly labelled frauds among its decisions since the stage began. */
  readonly frauds: number;
  /** The candidate's score PSI on this replica, once a PSI window is full. */
  readonly scorePsi?: number;
  /** Inference rows of the candidate on this replica, and how many failed. */
  readonly inference?: { readonly rows: number; readonly failed: number };
}

export type PromotionStep =
  | { readonly kind: 'hold'; readonly reason: string }
  | { readonly kind: 'canary'; readonly step: number; readonly percent: number; readonly reason: string }
  | { readonly kind: 'activate'; readonly reason: string }
  | { readonly kind: 'rollback'; readonly reason: string };

/**
 * The policy's next step for a candidate in shadow or canary. Alarms first: a score PSI above `maxScorePsi` or
 * an inference error rate above `maxErrorRate` rolls it back at once. Then the live comparison: `worse` (DeLong,
 * significant at the performance report's alpha) rolls it back; `better` or `no_significant_difference` with at
 * least `minFrauds` labelled frauds since the stage began, and the interval's lower bound within `maxAucLoss`,
 * advances it (shadow → first canary step → … → active); anything else holds.
 */
export function nextPromotionStep(
  candidate: PromotionCandidate,
  evidence: PromotionEvidence,
  policy: PromotionPolicy,
): PromotionStep {
  if (evidence.scorePsi !== undefined && evidence.scorePsi > policy.maxScorePsi)
    return { kind: 'rollback', reason: `score PSI ${round(evidence.scorePsi)} > ${policy.maxScorePsi}` };
  const inf = evidence.inference;
  if (inf && inf.rows >= policy.minErrorRows && inf.failed / inf.rows > policy.maxErrorRate)
    return {
      kind: 'rollback',
      reason: `inference error rate ${round(inf.failed / inf.rows)} > ${policy.maxErrorRate} over ${inf.rows} rows`,
    };
  const c = evidence.comparison;
  if (!c || c.challenger !== candidate.version)
    return { kind: 'hold', reason: 'no live comparison with the active version yet' };
  if (c.verdict === 'worse')
    return {
      kind: 'rollback',
      reason: `worse than ${c.champion}: AUC difference ${c.auc_difference} (95% CI ${fmtCi(c.ci95)}, p ${c.p_value})`,
    };
  const fresh = evidence.frauds;
  if (fresh < policy.minFrauds)
    return {
      kind: 'hold',
      reason: `${fresh} of ${policy.minFrauds} labelled frauds since the ${candidate.stage} stage began`,
    };
  if (c.verdict === 'insufficient_data' || !c.ci95)
    return { kind: 'hold', reason: 'the comparison has too few labelled frauds' };
  if (c.ci95[0] < -policy.maxAucLoss)
    return {
      kind: 'hold',
      reason: `the AUC difference's 95% interval ${fmtCi(c.ci95)} reaches below −${policy.maxAucLoss}: more labelled frauds needed`,
    };
  const why = `not worse than ${c.champion} (${c.verdict}: AUC difference ${c.auc_difference}, 95% CI ${fmtCi(c.ci95)}) with ${fresh} labelled frauds in the ${candidate.stage} stage`;
  const next = candidate.stage === 'shadow' ? 0 : (candidate.step ?? 0) + 1;
  const percent = policy.canarySteps[next];
  if (percent === undefined) return { kind: 'activate', reason: why };
  return { kind: 'canary', step: next, percent, reason: why };
}

/** The start of the UTC day after `ms`, ISO-8601: where a stage begun at `ms` starts counting its evidence. */
export function evidenceFrom(ms: number): string {
  return new Date((Math.floor(ms / DAY_MS) + 1) * DAY_MS).toISOString();
}

/** Appends a transition, keeping the last HISTORY_KEPT. */
export function withTransition(r: PromotionRecord, t: PromotionTransition): PromotionRecord['history'] {
  return [...r.history, t].slice(-HISTORY_KEPT);
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

function fmtCi(ci: readonly [number, number] | null): string {
  return ci ? `${ci[0]}..${ci[1]}` : 'n/a';
}
