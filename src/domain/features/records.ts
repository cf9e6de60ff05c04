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
  /** The ids of the other entities the transaction named, for the entity's link features (see `Links`). */
  readonly links?: Links;
}

/**
 * Other entity name → the id this record's transaction has for it: what `count_distinct`, `seconds_since_first_with`
 * and `new_with` read (the device of a customer's transaction, the customer of a device's). A record carries the
 * links its entity's features name (EntitySpec `links`), and only those the transaction had (no device, no `device`).
 */
export type Links = Readonly<Record<string, string>>;

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
  /** Per row, its links; absent when no row has any. */
  readonly links?: readonly (Links | undefined)[];
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
    out.push({
      id: c.ids[i]!,
      t: c.t[i]!,
      seq: c.seq[i]!,
      amount: c.amount[i]!,
      fraud: c.fraud[i] === 1,
      ...(c.links?.[i] ? { links: c.links[i] } : {}),
    });
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
  /**
   * The other entities whose distinct ids this entity's windows count, with the transaction's own id for each
   * (absent when it has none); given only when every such window ends at the transaction (no delay). A store
   * may then answer with `distinct` instead of whole link sets (see DistinctCounts).
   */
  readonly distinct?: readonly DistinctLink[];
}

export interface DistinctLink {
  readonly name: string;
  readonly own?: string;
  /** Features read the time of `own` too (novelty): tiles' link sets keep it; else they may send none. */
  readonly novelty?: boolean;
}

/**
 * Distinct ids counted by the store, for windows that end at the transaction (t = the query's last bound): per
 * other entity, `after[name][i]` ids whose newest record lies after `bounds[i]` (and so in (bounds[i], t]), and
 * `ownNewest[name]` the newest time of the transaction's own id (−∞: none). A store gives it only when no id has
 * a record at or after t — then an id's newest time says exactly whether it is in a window, ties at t cannot
 * arise, and the read costs a few counts however many ids the entity has (issue 20: a device shared by 5,000
 * cards). Otherwise it gives whole link sets and the engine counts them. `bounds` are the query's, clipped at the
 * store's horizon like the rest of the answer.
 */
export interface DistinctCounts {
  readonly bounds: readonly number[];
  readonly after: Readonly<Record<string, readonly number[]>>;
  readonly ownNewest: Readonly<Record<string, number>>;
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
  /**
   * The distinct links of each tile's records: tile i's are entries `linkStart[i]` to `linkStart[i + 1] - 1`, each
   * an other entity's name, an id, and the time of the tile's first record with it. Absent when no tile has any.
   *
   * Why sets per tile rather than counts: distinct counts do not add up across tiles (a card seen in two tiles is
   * one card), and exactness matters more here than the tile's constant size. A tile's set is bounded by its
   * record count, and for the entities these features are about — a customer's devices and networks, a device's or
   * network's cards — it stays small: what a read brings back is the distinct ids of the window's tiles, the very
   * thing the feature counts, never the records behind them. A hot device shared by thousands of cards would bring
   * back its thousands of ids per window, so for windows that end at the transaction a store counts them itself
   * (DistinctCounts) and these sets carry at most the transaction's own ids.
   */
  readonly linkStart?: readonly number[];
  readonly linkEntity?: readonly string[];
  readonly linkId?: readonly string[];
  readonly linkFirst?: readonly number[];
}

/**
 * A store's answer to a SummaryQuery: the records of (bounds[0], bounds[last]] the store holds, as raw records
 * (the columns, sorted by (t, seq)) and tiles, disjoint in time. No tile holds a bound of the query (b with
 * lo < b ≤ hi), so each lies wholly inside or outside every window. Raw records alone (no `tiles`, as raw reads
 * and the backfill give) are a summary too.
 */
export interface WindowSummary extends RecordColumns {
  readonly tiles?: TileColumns;
  /**
   * With it, tiles' link sets may hold only the transaction's own ids for the links that novelty features read
   * (DistinctLink `novelty`), or nothing; raw records keep every link.
   */
  readonly distinct?: DistinctCounts;
}

export type StoreEvent =
  | {
      readonly kind: 'tx';
      readonly key: EntityKey;
      readonly txId: string;
      readonly t: number;
      readonly amount: number;
      /** The links this entity's records carry (EntitySpec `links`); absent when none. */
      readonly links?: Links;
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
