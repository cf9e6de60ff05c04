import { upperBound } from '../../domain/features/engine.js';
import type {
  ApplyOutcome,
  RecordColumns,
  RetentionPolicy,
  StoreEvent,
  WindowQuery,
} from '../../domain/features/records.js';
import { latestEventTime, NO_RECORDS } from '../../domain/features/records.js';
import type { FutureLimit } from '../../ports/clock.js';
import type { FeatureStore } from '../../ports/feature-store.js';
import type { WindowStateStore } from '../../ports/window-state.js';
import { EntityColumns } from './entity-columns.js';

export interface EntityState {
  readonly records: EntityColumns;
  /** The ids of `records`, built only once an id arrives that `maxId` cannot prove new. */
  known: Set<string> | undefined;
  /** The largest integer id applied (-1: none): ids that only grow, like the handbook's, need no set. */
  maxId: number;
  readonly labels: Map<string, { t: number; fraud: boolean }>;
  newest: number;
}

const SWEEP_EVERY = 100_000;

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
  ) {}

  async apply(events: readonly StoreEvent[]): Promise<ApplyOutcome[]> {
    const latest = this.limit
      ? latestEventTime(this.limit.clock.now(), this.limit.maxFutureMs)
      : Number.POSITIVE_INFINITY;
    return events.map((e) => (e.t > latest ? 'future' : this.applySync(e)));
  }

  async read(queries: readonly WindowQuery[]): Promise<RecordColumns[]> {
    return queries.map((q) => {
      const c = this.records(q.entity, q.id);
      // A copy: the caller may hold the answer while later events change the columns.
      const from = upperBound(c.t, c.start, c.end, q.from);
      const to = upperBound(c.t, from, c.end, q.to);
      return {
        start: 0,
        end: to - from,
        ids: c.ids.slice(from, to),
        t: c.t.slice(from, to),
        seq: c.seq.slice(from, to),
        amount: c.amount.slice(from, to),
        fraud: c.fraud.slice(from, to),
      };
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
      ? this.applyTxTo(s, e.txId, e.t, e.amount)
      : this.applyLabelTo(s, e.txId, e.t, e.fraud);
  }

  /**
   * One entity's state, for the backfill's hot loop: read its records and apply its events without looking it
   * up again or building event objects.
   */
  entity(entity: string, id: string): EntityState {
    return this.state(entity, id, true)!;
  }

  applyTxTo(s: EntityState, txId: string, t: number, amount: number): ApplyOutcome {
    if (t <= s.newest - this.retention.horizonMs) return 'late';
    return this.after(s, t, this.applyTx(s, txId, t, amount));
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
      };
      kind.set(id, s);
    }
    return s;
  }

  private applyTx(s: EntityState, id: string, t: number, amount: number): ApplyOutcome {
    const n = integerId(id);
    if (n > s.maxId) s.maxId = n;
    else if (knownIds(s).has(id)) return 'duplicate';
    s.known?.add(id);
    const fraud = s.labels.size > 0 && s.labels.get(id)?.fraud ? 1 : 0;
    s.records.insert(id, t, ++this.seq, amount, fraud);
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

function applyLabel(s: EntityState, id: string, t: number, fraud: boolean): ApplyOutcome {
  const prev = s.labels.get(id);
  if (prev && prev.fraud === fraud) return 'duplicate';
  s.labels.set(id, { t, fraud });
  const k = s.known && !s.known.has(id) ? -1 : s.records.indexOf(id, t);
  if (k >= 0) s.records.fraud[k] = fraud ? 1 : 0;
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
  if (s.records.start < s.records.end && s.records.t[s.records.start]! <= cutoff)
    s.records.trim(cutoff, s.known);
  if (s.labels.size > 0) for (const [id, l] of s.labels) if (l.t <= cutoff) s.labels.delete(id);
}
