import type { Decision } from '../scoring/decision.js';
import type { OutcomeCounts } from './outcomes.js';

export interface VersionMetrics {
  readonly labelled: number;
  readonly frauds: number;
  readonly explicit: number;
  readonly matured: number;
  /** Null while there is no fraud or no non-fraud outcome to rank. */
  readonly auc: number | null;
  readonly average_precision: number | null;
  /** "At review": decided review or decline; "at decline": decided decline. Null when nothing was flagged. */
  readonly precision_at_review: number | null;
  readonly recall_at_review: number | null;
  readonly precision_at_decline: number | null;
  readonly recall_at_decline: number | null;
  readonly label_latency_p50_hours: number | null;
  /** Outcomes per decision the version made: the confusion counts. */
  readonly outcomes_by_decision: Record<Decision, { fraud: number; not_fraud: number }>;
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : null);

/**
 * AUC (the Mann–Whitney statistic, ties counting half, as scikit-learn's roc_auc_score) and average precision
 * (scikit-learn's average_precision_score: Σ (Rₖ − Rₖ₋₁) Pₖ over descending thresholds, one per occupied bin) from
 * the score (logit) histograms of frauds and non-frauds.
 */
export function rankMetrics(c: Pick<OutcomeCounts, 'fraud' | 'legit'>): {
  auc: number | null;
  average_precision: number | null;
} {
  const bins = [...new Set([...c.fraud.keys(), ...c.legit.keys()])].sort((a, b) => a - b);
  let frauds = 0;
  let legits = 0;
  for (const b of bins) {
    frauds += c.fraud.get(b) ?? 0;
    legits += c.legit.get(b) ?? 0;
  }
  if (frauds <= 0) return { auc: null, average_precision: null };
  let below = 0;
  let pairs = 0;
  for (const b of bins) {
    const f = c.fraud.get(b) ?? 0;
    const l = c.legit.get(b) ?? 0;
    pairs += f * (below + l / 2);
    below += l;
  }
  let tp = 0;
  let fp = 0;
  let ap = 0;
  for (let i = bins.length - 1; i >= 0; i--) {
    const f = c.fraud.get(bins[i]!) ?? 0;
    tp += f;
    fp += c.legit.get(bins[i]!) ?? 0;
    if (f > 0) ap += (f / frauds) * (tp / (tp + fp));
  }
  return { auc: legits > 0 ? pairs / (frauds * legits) : null, average_precision: ap };
}

/** Median hours from decision to first explicit label; each whole-hour bucket stands for its middle. */
export function medianLatencyHours(latency: ReadonlyMap<number, number>): number | null {
  const hours = [...latency.keys()].sort((a, b) => a - b);
  const total = hours.reduce((s, h) => s + latency.get(h)!, 0);
  if (total <= 0) return null;
  let seen = 0;
  for (const h of hours) {
    seen += latency.get(h)!;
    if (seen >= total / 2) return h + 0.5;
  }
  return null;
}

export function versionMetrics(c: OutcomeCounts): VersionMetrics {
  const { approve, review, decline } = c.confusion;
  const frauds = approve.fraud + review.fraud + decline.fraud;
  const labelled = frauds + approve.legit + review.legit + decline.legit;
  const flaggedFrauds = review.fraud + decline.fraud;
  const flagged = flaggedFrauds + review.legit + decline.legit;
  return {
    labelled,
    frauds,
    explicit: c.explicit,
    matured: c.matured,
    ...rankMetrics(c),
    precision_at_review: ratio(flaggedFrauds, flagged),
    recall_at_review: ratio(flaggedFrauds, frauds),
    precision_at_decline: ratio(decline.fraud, decline.fraud + decline.legit),
    recall_at_decline: ratio(decline.fraud, frauds),
    label_latency_p50_hours: medianLatencyHours(c.latencyHours),
    outcomes_by_decision: {
      approve: { fraud: approve.fraud, not_fraud: approve.legit },
      review: { fraud: review.fraud, not_fraud: review.legit },
      decline: { fraud: decline.fraud, not_fraud: decline.legit },
    },
  };
}
