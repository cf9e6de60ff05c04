/**
 * What a feature store keeps per entity (a customer, a terminal): the transactions it saw and their fraud labels.
 * Stores are deliberately dumb — windows, delays and aggregations live in the domain engine — so every store
 * yields the same features by construction.
 */
export interface TxRecord {
  readonly id: string;
  /** Event time, epoch milliseconds. */
  readonly t: number;
  /** Arrival order within the entity; breaks ties between equal event times. */
  readonly seq: number;
  readonly amount: number;
  /** A fraud label was applied (labels may arrive before or after their transaction). */
  readonly fraud: boolean;
}

export interface EntityKey {
  readonly entity: string;
  readonly id: string;
}

/** Records of one entity with from < t ≤ to, sorted by (t, seq). */
export interface WindowQuery extends EntityKey {
  readonly from: number;
  readonly to: number;
}

export type StoreEvent =
  | {
      readonly kind: 'tx';
      readonly key: EntityKey;
      readonly txId: string;
      readonly t: number;
      readonly amount: number;
    }
  | {
      readonly kind: 'label';
      readonly key: EntityKey;
      readonly txId: string;
      readonly t: number;
      readonly fraud: boolean;
    };

/** applied: changed state; duplicate: already applied, nothing changed; late: older than the retention horizon. */
export type ApplyOutcome = 'applied' | 'duplicate' | 'late';

export interface FeatureStore {
  readonly kind: string;
  /** Applies events in order; each event is atomic and idempotent. Resolves once every event is durable in the store. */
  apply(events: readonly StoreEvent[]): Promise<ApplyOutcome[]>;
  read(queries: readonly WindowQuery[]): Promise<TxRecord[][]>;
  /** Rejects when the store cannot serve. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface RetentionPolicy {
  /** State older than (newest event time seen for the entity − horizonMs) is trimmed; older events are refused as late. */
  readonly horizonMs: number;
}
