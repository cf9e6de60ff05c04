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

/**
 * The records of one entity, column by column: rows `start` to `end - 1`, sorted by (t, seq). Columns keep a
 * window scan inside a few cache lines, which is most of what the backfill's hot loop does.
 */
export interface RecordColumns {
  readonly start: number;
  readonly end: number;
  readonly ids: readonly (string | undefined)[];
  readonly t: Float64Array;
  readonly seq: Float64Array;
  readonly amount: Float64Array;
  readonly fraud: Uint8Array;
}

export const NO_RECORDS: RecordColumns = {
  start: 0,
  end: 0,
  ids: [],
  t: new Float64Array(0),
  seq: new Float64Array(0),
  amount: new Float64Array(0),
  fraud: new Uint8Array(0),
};

export function rowsOf(c: RecordColumns): TxRecord[] {
  const out: TxRecord[] = [];
  for (let i = c.start; i < c.end; i++)
    out.push({ id: c.ids[i]!, t: c.t[i]!, seq: c.seq[i]!, amount: c.amount[i]!, fraud: c.fraud[i] === 1 });
  return out;
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

/**
 * What the windows of one entity need, answered with bounded work (see tiles.ts): every bound of every window,
 * ascending. The records that matter lie in (bounds[0], bounds[last]]; each window is (bounds[i], bounds[j]].
 */
export interface SummaryQuery extends EntityKey {
  readonly bounds: readonly number[];
}

/**
 * Aggregates of whole time tiles, in time order: tile i covers (lo[i], hi[i]], holds `count[i]` ≥ 1 records,
 * `frauds[i]` of them labelled fraud, the newest at `maxT[i]`, and the exact sum of their amounts as partials
 * `sumParts[sumStart[i]]` to `sumParts[sumStart[i + 1] - 1]` (see exact-sum.ts). Tiles do not overlap.
 */
export interface TileColumns {
  readonly lo: readonly number[];
  readonly hi: readonly number[];
  readonly count: readonly number[];
  readonly frauds: readonly number[];
  readonly maxT: readonly number[];
  readonly sumStart: readonly number[];
  readonly sumParts: readonly number[];
}

/**
 * A store's answer to a SummaryQuery: the records of (bounds[0], bounds[last]] the store holds, as raw records
 * (the columns, sorted by (t, seq)) and tiles, disjoint in time. No tile holds a bound of the query (b with
 * lo < b ≤ hi), so each lies wholly inside or outside every window. Raw records alone (no `tiles`, as raw reads
 * and the backfill give) are a summary too.
 */
export interface WindowSummary extends RecordColumns {
  readonly tiles?: TileColumns;
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

/**
 * applied: changed state; duplicate: already applied, nothing changed; late: older than the retention horizon;
 * future: dated beyond what the processing clock allows (see `latestEventTime`), nothing changed.
 */
export type ApplyOutcome = 'applied' | 'duplicate' | 'late' | 'future';

/**
 * The newest event time accepted when the processing clock reads `nowMs` (MAX_EVENT_FUTURE_MS): later events are
 * refused as `future`. One event dated 2081 instead of 2018 would otherwise become its entity's newest time,
 * make every real event `late` and trim the real history as past the horizon.
 */
export function latestEventTime(nowMs: number, maxFutureMs: number): number {
  return nowMs + maxFutureMs;
}

export interface RetentionPolicy {
  /** State older than (newest event time seen for the entity − horizonMs) is trimmed; older events are refused as late. */
  readonly horizonMs: number;
}
