import type { Thresholds } from './decision.js';

/**
 * The documented rule-based score used when no model can run in time. Rules follow the handbook's fraud
 * patterns and read features by name, so they work for any feature set that has them; the highest firing
 * rule wins.
 */
export interface FallbackRule {
  readonly feature: string;
  readonly atLeast: number;
  readonly score: number;
  readonly explanation: string;
}

export const FALLBACK_RULES: readonly FallbackRule[] = [
  { feature: 'TX_AMOUNT', atLeast: 220, score: 0.9, explanation: 'amount of 220 or more' },
  {
    feature: 'TERMINAL_ID_RISK_1DAY_WINDOW',
    atLeast: 0.5,
    score: 0.8,
    explanation: 'terminal had confirmed fraud recently',
  },
  {
    feature: 'TERMINAL_ID_RISK_7DAY_WINDOW',
    atLeast: 0.3,
    score: 0.7,
    explanation: 'terminal had confirmed fraud recently',
  },
  {
    feature: 'CUSTOMER_ID_AMOUNT_RATIO_30DAY_WINDOW',
    atLeast: 4,
    score: 0.6,
    explanation: 'amount far above the customer’s usual',
  },
];
export const FALLBACK_BASE_SCORE = 0.02;

/**
 * Decisions on a fallback score: a firing rule (0.6 to 0.9) declines, the base score approves. Used when no
 * model version could be routed to; a version's own thresholds apply to its fallback scores otherwise.
 */
export const FALLBACK_THRESHOLDS: Thresholds = { review: 0.05, decline: 0.5 };

export function fallbackScore(features: Readonly<Record<string, number>>): {
  score: number;
  reasons: { feature: string; value: number; explanation: string }[];
} {
  const fired = FALLBACK_RULES.filter(
    (r) => (features[r.feature] ?? Number.NEGATIVE_INFINITY) >= r.atLeast,
  ).sort((a, b) => b.score - a.score);
  return {
    score: fired[0]?.score ?? FALLBACK_BASE_SCORE,
    reasons: fired.slice(0, 3).map((r) => ({
      feature: r.feature,
      value: features[r.feature]!,
      explanation: `rule: ${r.explanation}`,
    })),
  };
}
