import type { Labelled } from '../domain/performance/delong.js';
import type { DecisionRole, OutcomeCounts } from '../domain/performance/outcomes.js';
import type { Decision } from '../domain/scoring/decision.js';

/** One model version's decision on one transaction. */
export interface LoggedDecision {
  readonly version: string;
  readonly role: DecisionRole;
  readonly score: number;
  readonly decision: Decision;
  /** Decision time: epoch ms on the processing clock. */
  readonly at: number;
}

export interface DecisionEntry {
  readonly transactionId: string;
  readonly decisions: readonly LoggedDecision[];
}

/** A fraud verdict on a transaction, as the label join needs it. */
export interface LabelFact {
  readonly transactionId: string;
  readonly fraud: boolean;
  /** The transaction's own time (epoch ms): where an unscored label is kept, stable across redeliveries. */
  readonly transactionAt: number;
  /** When the verdict was given (`labeled_at`, else the time it was applied): label latency. */
  readonly labelledAt: number;
}

/** What a label did to one version's counts. */
export type LabelOutcome = 'new' | 'duplicate' | 'corrected';

export interface VersionLabel {
  readonly version: string;
  readonly role: DecisionRole;
  readonly decision: Decision;
  readonly outcome: LabelOutcome;
}

export type LabelResult =
  /** No decision of the model on record: counted once per transaction under `unscored`. */
  | { readonly unscored: true; readonly outcome: 'new' | 'duplicate' }
  | { readonly unscored: false; readonly versions: readonly VersionLabel[] };

/**
 * Every scored transaction's decisions per model version, kept LABEL_HORIZON_DAYS, and the outcomes its labels
 * make of them: counts per version and decision day, in the shared store so every replica reports the fleet's
 * numbers. A redelivered label changes nothing; a corrected one moves the counts once (the last label applied
 * per transaction and version is kept). Every recorded decision is also counted per decision day, so a day's
 * unlabelled decisions can mature into non-fraud outcomes without any state per decision.
 */
export interface DecisionLog {
  readonly kind: string;
  /** Records decisions of `model` (several versions of one transaction may come in separate calls). */
  record(model: string, entries: readonly DecisionEntry[]): Promise<void>;
  /** Joins each label with the model's recorded decisions of its transaction, in order. */
  label(model: string, labels: readonly LabelFact[]): Promise<LabelResult[]>;
  /** Versions with recorded decisions, and the role each played last. */
  versions(model: string): Promise<ReadonlyMap<string, DecisionRole>>;
  /**
   * A version's outcomes of decisions made on UTC day `fromDay` (days since the epoch) or later; on the days up
   * to `maturedThroughDay`, the decisions without an explicit label count as matured non-fraud outcomes.
   */
  counts(model: string, version: string, fromDay: number, maturedThroughDay: number): Promise<OutcomeCounts>;
  /** A version's explicitly labelled transactions since `fromDay`, with the score it gave each: for DeLong. */
  labelled(model: string, version: string, fromDay: number): Promise<Map<string, Labelled>>;
  /** Transactions labelled without a decision of the model on record. */
  unscored(model: string): Promise<number>;
}
