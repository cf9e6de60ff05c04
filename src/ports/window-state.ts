import type { ApplyOutcome, Links, RecordColumns } from '../domain/features/records.js';

/** One entity's records, held where a job can update and read them without a round trip. */
export interface EntityWindowState {
  readonly records: RecordColumns;
}

/**
 * Synchronous window state for jobs that replay history in one process (the backfill): the same records a
 * FeatureStore keeps, applied and read in place, because an await per row would cost more than the row.
 */
export interface WindowStateStore<S extends EntityWindowState = EntityWindowState> {
  entity(kind: string, id: string): S;
  applyTxTo(state: S, txId: string, t: number, amount: number, links?: Links): ApplyOutcome;
  applyLabelTo(state: S, txId: string, t: number, fraud: boolean): ApplyOutcome;
}
