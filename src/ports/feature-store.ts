import type { ApplyOutcome, RecordColumns, StoreEvent, WindowQuery } from '../domain/features/records.js';

export interface FeatureStore {
  readonly kind: string;
  /** Applies events in order; each event is atomic and idempotent. Resolves once every event is durable in the store. */
  apply(events: readonly StoreEvent[]): Promise<ApplyOutcome[]>;
  read(queries: readonly WindowQuery[]): Promise<RecordColumns[]>;
  /** Rejects when the store cannot serve. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
