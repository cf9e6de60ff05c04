import { upperBound } from '../../domain/features/engine.js';
import type {
  ApplyOutcome,
  FeatureStore,
  RetentionPolicy,
  StoreEvent,
  TxRecord,
  WindowQuery,
} from '../../ports/feature-store.js';

interface MutableRecord {
  id: string;
  t: number;
  seq: number;
  amount: number;
  fraud: boolean;
}

interface EntityState {
  /** Sorted by (t, seq). */
  records: MutableRecord[];
  byId: Map<string, MutableRecord>;
  labels: Map<string, { t: number; fraud: boolean }>;
  newest: number;
}

const SWEEP_EVERY = 100_000;
const NONE: readonly TxRecord[] = [];

/**
 * The embedded feature store: one process, no server. It is also the engine of `fraudscore backfill`,
 * which is why the synchronous `applySync`/`readSync` exist next to the FeatureStore methods.
 */
export class MemoryFeatureStore implements FeatureStore {
  readonly kind = 'memory';
  /** entity kind → entity id → state; nested maps avoid building a key string per event. */
  private readonly entities = new Map<string, Map<string, EntityState>>();
  private seq = 0;
  private newest = Number.NEGATIVE_INFINITY;
  private sinceSweep = 0;

  constructor(private readonly retention: RetentionPolicy) {}

  async apply(events: readonly StoreEvent[]): Promise<ApplyOutcome[]> {
    return events.map((e) => this.applySync(e));
  }

  async read(queries: readonly WindowQuery[]): Promise<TxRecord[][]> {
    return queries.map((q) => this.readSync(q));
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

  private state(entity: string, id: string, create: boolean): EntityState | undefined {
    let kind = this.entities.get(entity);
    if (!kind) {
      if (!create) return undefined;
      kind = new Map();
      this.entities.set(entity, kind);
    }
    let s = kind.get(id);
    if (!s && create) {
      s = { records: [], byId: new Map(), labels: new Map(), newest: Number.NEGATIVE_INFINITY };
      kind.set(id, s);
    }
    return s;
  }

  applySync(e: StoreEvent): ApplyOutcome {
    const s = this.state(e.key.entity, e.key.id, true)!;
    if (e.t <= s.newest - this.retention.horizonMs) return 'late';
    const outcome =
      e.kind === 'tx' ? this.applyTx(s, e.txId, e.t, e.amount) : applyLabel(s, e.txId, e.t, e.fraud);
    if (outcome === 'applied' && e.t > s.newest) {
      s.newest = e.t;
      trim(s, e.t - this.retention.horizonMs);
    }
    if (e.t > this.newest) this.newest = e.t;
    if (++this.sinceSweep >= SWEEP_EVERY) this.sweep();
    return outcome;
  }

  readSync(q: WindowQuery): TxRecord[] {
    const r = this.records(q.entity, q.id);
    return r.slice(upperBound(r, q.from), upperBound(r, q.to));
  }

  /** Every record the entity holds, without a copy: for the backfill's hot loop, where the engine does the windowing. */
  records(entity: string, id: string): readonly TxRecord[] {
    return this.state(entity, id, false)?.records ?? NONE;
  }

  private applyTx(s: EntityState, id: string, t: number, amount: number): ApplyOutcome {
    if (s.byId.has(id)) return 'duplicate';
    const rec: MutableRecord = { id, t, seq: ++this.seq, amount, fraud: s.labels.get(id)?.fraud ?? false };
    const r = s.records;
    // Events arrive nearly in time order, so the insertion point is almost always the end.
    let i = r.length;
    while (i > 0 && r[i - 1]!.t > t) i--;
    if (i === r.length) r.push(rec);
    else r.splice(i, 0, rec);
    s.byId.set(id, rec);
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
  const rec = s.byId.get(id);
  if (rec) rec.fraud = fraud;
  return 'applied';
}

function trim(s: EntityState, cutoff: number): void {
  const r = s.records;
  let n = 0;
  while (n < r.length && r[n]!.t <= cutoff) s.byId.delete(r[n++]!.id);
  if (n > 0) r.splice(0, n);
  if (s.labels.size > 0) for (const [id, l] of s.labels) if (l.t <= cutoff) s.labels.delete(id);
}
