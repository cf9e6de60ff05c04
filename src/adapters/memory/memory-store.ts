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

/**
 * The embedded feature store: one process, no server. It is also the engine of `fraudscore backfill`,
 * which is why the synchronous `applySync`/`readSync` exist next to the FeatureStore methods.
 */
export class MemoryFeatureStore implements FeatureStore {
  readonly kind = 'memory';
  private readonly entities = new Map<string, EntityState>();
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
    return this.entities.size;
  }

  applySync(e: StoreEvent): ApplyOutcome {
    const k = `${e.key.entity}\u0000${e.key.id}`;
    let s = this.entities.get(k);
    if (s && e.t <= s.newest - this.retention.horizonMs) return 'late';
    if (!s) {
      s = { records: [], byId: new Map(), labels: new Map(), newest: Number.NEGATIVE_INFINITY };
      this.entities.set(k, s);
    }
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
    const s = this.entities.get(`${q.entity}\u0000${q.id}`);
    if (!s) return [];
    const r = s.records;
    return r.slice(upperBound(r, q.from), upperBound(r, q.to));
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
    for (const [k, s] of this.entities) if (s.newest <= cutoff) this.entities.delete(k);
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
  for (const [id, l] of s.labels) if (l.t <= cutoff) s.labels.delete(id);
}

/** First index whose record time is greater than t. */
function upperBound(r: readonly MutableRecord[], t: number): number {
  let lo = 0;
  let hi = r.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (r[mid]!.t <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
