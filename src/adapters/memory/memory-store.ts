import { upperBound } from '../../domain/features/engine.js';
import type {
  ApplyOutcome,
  DistinctCounts,
  DistinctLink,
  Links,
  RecordColumns,
  RetentionPolicy,
  StoreEvent,
  SummaryQuery,
  WindowQuery,
  WindowSummary,
} from '../../domain/features/records.js';
import { latestEventTime, NO_RECORDS } from '../../domain/features/records.js';
import { clipBounds, planTiles, TILE_LEVELS, TileColumnsBuilder } from '../../domain/features/tiles.js';
import type { FutureLimit } from '../../ports/clock.js';
import type { FeatureStore } from '../../ports/feature-store.js';
import type { WindowStateStore } from '../../ports/window-state.js';
import { EntityColumns } from './entity-columns.js';
import { EntityTiles } from './entity-tiles.js';

export interface EntityState {
  readonly records: EntityColumns;
  /** The ids of `records`, built only once an id arrives that `maxId` cannot prove new. */
  known: Set<string> | undefined;
  /** The largest integer id applied (-1: none): ids that only grow, like the handbook's, need no set. */
  maxId: number;
  readonly labels: Map<string, { t: number; fraud: boolean }>;
  newest: number;
  /** Tile aggregates of `records`, built by the first bounded read and kept in step from then on. */
  tiles: EntityTiles | undefined;
}

const SWEEP_EVERY = 100_000;

/**
 * An entity with at most this many records is summarized from its sorted columns alone: two binary searches and
 * a copy of a few records, bounded by this size. Beyond it, tiles are built (once, by the write that crosses it)
 * and kept in step.
 */
export const RAW_RECORDS = 128;

/**
 * The embedded feature store: one process, no server. It is also the engine of `fraudscore backfill`,
 * which is why the synchronous `entity`/`applyTxTo`/`records` exist next to the FeatureStore methods.
 * With a `limit`, `apply` refuses events dated beyond it as `future` before they touch any state: no newest
 * time moves, nothing is trimmed or swept. (The backfill's synchronous path has no processing clock.)
 */
export class MemoryFeatureStore implements FeatureStore, WindowStateStore<EntityState> {
  readonly kind = 'memory';
  /** entity kind → entity id → state; nested maps avoid building a key string per event. */
  private readonly entities = new Map<string, Map<string, EntityState>>();
  private seq = 0;
  private newest = Number.NEGATIVE_INFINITY;
  private sinceSweep = 0;

  constructor(
    private readonly retention: RetentionPolicy,
    private readonly limit?: FutureLimit,
    private readonly options: { readonly rawRecords?: number } = {},
  ) {}

  async apply(events: readonly StoreEvent[]): Promise<ApplyOutcome[]> {
    const latest = this.limit
      ? latestEventTime(this.limit.clock.now(), this.limit.maxFutureMs)
      : Number.POSITIVE_INFINITY;
    return events.map((e) => (e.t > latest ? 'future' : this.applySync(e)));
  }

  async read(queries: readonly WindowQuery[]): Promise<RecordColumns[]> {
    return queries.map((q) => this.slice(this.records(q.entity, q.id), q.from, q.to));
  }

  /** A copy of the records with from < t ≤ to: the caller may hold the answer while later events change them. */
  private slice(c: RecordColumns, after: number, upTo: number): RecordColumns {
    const from = upperBound(c.t, c.start, c.end, after);
    const to = upperBound(c.t, from, c.end, upTo);
    return {
      start: 0,
      end: to - from,
      ids: c.ids.slice(from, to),
      t: c.t.slice(from, to),
      seq: c.seq.slice(from, to),
      amount: c.amount.slice(from, to),
      fraud: c.fraud.slice(from, to),
      ...(c.links ? { links: c.links.slice(from, to) } : {}),
    };
  }

  /**
   * Bounded reads (see domain/features/tiles.ts): per query, the raw records of the finest tiles that hold a bound, found
   * by binary search in the sorted columns, and the aggregates of the whole tiles between them (an entity with at
   * most `rawRecords` records and no tiles yet: its records in range). Records trimmed past the horizon are gone,
   * so the tile that holds the cutoff is read raw.
   */
  async summarize(queries: readonly SummaryQuery[]): Promise<WindowSummary[]> {
    return queries.map((q) => {
      const s = this.state(q.entity, q.id, false);
      if (!s) return NO_RECORDS;
      if (!s.tiles && s.records.end - s.records.start <= (this.options.rawRecords ?? RAW_RECORDS))
        return this.slice(s.records, q.bounds[0] ?? 0, q.bounds[q.bounds.length - 1] ?? 0);
      s.tiles ??= EntityTiles.of(s.records);
      const cutoff = s.newest - this.retention.horizonMs;
      const bounds = q.bounds.length > 0 && cutoff >= q.bounds[0]! ? clipBounds(q.bounds, cutoff) : q.bounds;
      const plan = planTiles(bounds);
      if (plan.raw.length === 0 && plan.index.length === 0) return NO_RECORDS;
      const from = bounds[0]!;
      const to = bounds[bounds.length - 1]!;
      const c = s.records;
      const finest = TILE_LEVELS[0]!.ms;
      const spans: [number, number][] = plan.raw.map((k) => {
        const lo = upperBound(c.t, c.start, c.end, Math.max(k * finest, from));
        return [lo, upperBound(c.t, lo, c.end, Math.min((k + 1) * finest, to))];
      });
      const n = spans.reduce((sum, [lo, hi]) => sum + hi - lo, 0);
      const out = {
        start: 0,
        end: n,
        ids: new Array<string | undefined>(n),
        t: new Float64Array(n),
        seq: new Float64Array(n),
        amount: new Float64Array(n),
        fraud: new Uint8Array(n),
        links: c.links ? new Array<Links | undefined>(n) : undefined,
      };
      let at = 0;
      for (const [lo, hi] of spans) {
        if (c.links) for (let k = lo; k < hi; k++) out.links![at + k - lo] = c.links[k];
        out.t.set(c.t.subarray(lo, hi), at);
        out.seq.set(c.seq.subarray(lo, hi), at);
        out.amount.set(c.amount.subarray(lo, hi), at);
        out.fraud.set(c.fraud.subarray(lo, hi), at);
        for (let k = lo; k < hi; k++) out.ids[at++] = c.ids[k];
      }
      const distinct = q.distinct && distinctCounts(s.tiles, q.distinct, bounds);
      const only = distinct ? ownIds(q.distinct!) : undefined;
      const tiles = new TileColumnsBuilder();
      for (let i = 0; i < plan.index.length; i++)
        s.tiles.collect(plan.level[i]!, plan.index[i]!, tiles, only);
      return distinct ? { ...out, tiles: tiles.build(), distinct } : { ...out, tiles: tiles.build() };
    });
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.entities.clear();
  }

  get size(): number {
    let n = 0;
    for (const m of this.entities.values()) n += m.size;
    return n;
  }

  /** Every record the entity holds, without a copy: for the backfill's hot loop, where the engine does the windowing. */
  records(entity: string, id: string): RecordColumns {
    return this.state(entity, id, false)?.records ?? NO_RECORDS;
  }

  applySync(e: StoreEvent): ApplyOutcome {
    const s = this.entity(e.key.entity, e.key.id);
    return e.kind === 'tx'
      ? this.applyTxTo(s, e.txId, e.t, e.amount, e.links)
      : this.applyLabelTo(s, e.txId, e.t, e.fraud);
  }

  /**
   * One entity's state, for the backfill's hot loop: read its records and apply its events without looking it
   * up again or building event objects.
   */
  entity(entity: string, id: string): EntityState {
    return this.state(entity, id, true)!;
  }

  applyTxTo(s: EntityState, txId: string, t: number, amount: number, links?: Links): ApplyOutcome {
    if (t <= s.newest - this.retention.horizonMs) return 'late';
    return this.after(s, t, this.applyTx(s, txId, t, amount, links));
  }

  applyLabelTo(s: EntityState, txId: string, t: number, fraud: boolean): ApplyOutcome {
    if (t <= s.newest - this.retention.horizonMs) return 'late';
    return this.after(s, t, applyLabel(s, txId, t, fraud));
  }

  private after(s: EntityState, t: number, outcome: ApplyOutcome): ApplyOutcome {
    if (outcome === 'applied' && t > s.newest) {
      s.newest = t;
      trim(s, t - this.retention.horizonMs);
    }
    if (t > this.newest) this.newest = t;
    if (++this.sinceSweep >= SWEEP_EVERY) this.sweep();
    return outcome;
  }

  private state(entity: string, id: string, create: boolean): EntityState | undefined {
    let kind = this.entities.get(entity);
    if (!kind) {
      if (!create) return undefined;
      kind = new Map();
      this.entities.set(entity, kind);
    }
    let s = kind.get(id);
    if (!s && create) {
      s = {
        records: new EntityColumns(),
        known: undefined,
        maxId: -1,
        labels: new Map(),
        newest: Number.NEGATIVE_INFINITY,
        tiles: undefined,
      };
      kind.set(id, s);
    }
    return s;
  }

  private applyTx(s: EntityState, id: string, t: number, amount: number, links?: Links): ApplyOutcome {
    const n = integerId(id);
    if (n > s.maxId) s.maxId = n;
    else if (knownIds(s).has(id)) return 'duplicate';
    s.known?.add(id);
    const fraud = s.labels.size > 0 && s.labels.get(id)?.fraud ? 1 : 0;
    s.records.insert(id, t, ++this.seq, amount, fraud, links);
    if (s.tiles) s.tiles.add(t, amount, fraud, links);
    // Built by the write that outgrows the bound (from that many records), so no read pays for a whole history.
    else if (s.records.end - s.records.start > (this.options.rawRecords ?? RAW_RECORDS))
      s.tiles = EntityTiles.of(s.records);
    return 'applied';
  }

  /** Drops entities idle for longer than the horizon, measured from the newest event time seen by the store. */
  private sweep(): void {
    this.sinceSweep = 0;
    const cutoff = this.newest - this.retention.horizonMs;
    for (const kind of this.entities.values())
      for (const [id, s] of kind) if (s.newest <= cutoff) kind.delete(id);
  }
}

/** The distinct counts of the query's windows, if no linked id has a record at or after its end (DistinctCounts). */
function distinctCounts(
  tiles: EntityTiles,
  links: readonly DistinctLink[],
  bounds: readonly number[],
): DistinctCounts | undefined {
  const to = bounds[bounds.length - 1]!;
  for (const l of links) if ((tiles.newest.get(l.name)?.countFrom(to) ?? 0) > 0) return undefined;
  const after: Record<string, number[]> = {};
  const ownNewest: Record<string, number> = {};
  for (const l of links) {
    const n = tiles.newest.get(l.name);
    after[l.name] = bounds.map((b) => n?.countAfter(b) ?? 0);
    ownNewest[l.name] = (l.own === undefined ? undefined : n?.get(l.own)) ?? Number.NEGATIVE_INFINITY;
  }
  return { bounds, after, ownNewest };
}

function ownIds(links: readonly DistinctLink[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of links) if (l.own !== undefined && l.novelty) out.set(l.name, l.own);
  return out;
}

function applyLabel(s: EntityState, id: string, t: number, fraud: boolean): ApplyOutcome {
  const prev = s.labels.get(id);
  if (prev && prev.fraud === fraud) return 'duplicate';
  s.labels.set(id, { t, fraud });
  const k = s.known && !s.known.has(id) ? -1 : s.records.indexOf(id, t);
  if (k >= 0) {
    const flag = fraud ? 1 : 0;
    if (s.tiles && s.records.fraud[k] !== flag) s.tiles.relabel(s.records.t[k]!, flag - s.records.fraud[k]!);
    s.records.fraud[k] = flag;
  }
  return 'applied';
}

function knownIds(s: EntityState): Set<string> {
  if (!s.known) {
    const { ids, start, end } = s.records;
    s.known = new Set();
    for (let k = start; k < end; k++) s.known.add(ids[k]!);
  }
  return s.known;
}

/** A canonical non-negative integer id (no sign, no leading zero, exact in a double) as a number, else -1. */
function integerId(id: string): number {
  const n = id.length;
  if (n === 0 || n > 15 || (n > 1 && id.charCodeAt(0) === 48)) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = id.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

function trim(s: EntityState, cutoff: number): void {
  if (s.records.start < s.records.end && s.records.t[s.records.start]! <= cutoff) {
    s.records.trim(cutoff, s.known);
    s.tiles?.trim(cutoff);
  }
  if (s.labels.size > 0) for (const [id, l] of s.labels) if (l.t <= cutoff) s.labels.delete(id);
}
