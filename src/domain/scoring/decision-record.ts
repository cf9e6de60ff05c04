import type { DegradedReason, ScoreResult } from './result.js';

/** The audit record of one decision: the log line and the decisions topic carry it. */
export interface DecisionRecord {
  readonly transaction_id: string;
  readonly customer_id: string;
  readonly model: string;
  readonly model_version: string;
  readonly shadow_version?: string;
  readonly score: number;
  readonly decision: ScoreResult['decision'];
  readonly reasons: ScoreResult['reasons'];
  readonly degraded: boolean;
  readonly degraded_reasons?: readonly DegradedReason[];
}
