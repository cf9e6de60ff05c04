import type {
  ApplyOutcome,
  RecordColumns,
  StoreEvent,
  SummaryQuery,
  WindowQuery,
  WindowSummary,
} from '../domain/features/records.js';

export interface FeatureStore {
  readonly kind: string;
  /** Applies events in order; each event is atomic and idempotent. Resolves once every event is durable in the store. */
  apply(events: readonly StoreEvent[]): Promise<ApplyOutcome[]>;
  /**
   * What scoring reads: per query, the entity's records in (bounds[0], bounds[last]] as the raw records of the
   * tiles that hold a bound plus the aggregates of the whole tiles between (domain/features/tiles.ts), so the
   * work is bounded by the windows and tiles, not by the entity's history. The engine computes the same
   * features from it as from `read`, bit for bit.
   */
  summarize(queries: readonly SummaryQuery[]): Promise<WindowSummary[]>;
  /** Every record in (from, to], one by one: for tests, tools and audits; its cost grows with the history. */
  read(queries: readonly WindowQuery[]): Promise<RecordColumns[]>;
  /** Rejects when the store cannot serve. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
