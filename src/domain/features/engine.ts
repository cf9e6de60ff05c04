import { type Aggregation, type FeatureSet, featureSetId, type WindowFeature } from './definition.js';
import {
  type EntityKey,
  NO_RECORDS,
  type RecordColumns,
  type StoreEvent,
  type WindowQuery,
} from './records.js';
import { DAY_MS, SECOND_MS, utcHour, utcWeekday } from './time.js';

/** The parts of a transaction that features are computed from. */
export interface TxInput {
  readonly id: string;
  /** Event time, epoch milliseconds. */
  readonly t: number;
  readonly amount: number;
  readonly customer_id: string;
  readonly terminal_id: string;
}

export interface LabelInput {
  readonly txId: string;
  readonly t: number;
  readonly fraud: boolean;
  readonly customer_id: string;
  readonly terminal_id: string;
}

/** Aggregates of one (entity, window, delay) over the records the transaction may see. */
interface WindowStats {
  count: number;
  sum: number;
  frauds: number;
  /** Same, over the transactions that arrived before this one (the current one excluded). */
  priorCount: number;
  priorSum: number;
  prevT: number;
}

interface WindowSpec {
  readonly entityIndex: number;
  readonly spanMs: number;
  readonly delayMs: number;
}

/** The windows of one entity with one delay: they end at the same instant. */
interface WindowGroup {
  readonly entityIndex: number;
  readonly delayMs: number;
  /** Indices into the specs, shortest window first, and their spans. */
  readonly specs: readonly number[];
  readonly spans: readonly number[];
}

type Compute = (tx: TxInput, stats: readonly WindowStats[]) => number;

export interface CompiledFeatureSet {
  /** e.g. `transaction_v1`, the name manifests refer to. */
  readonly id: string;
  readonly definition: FeatureSet;
  readonly names: readonly string[];
  readonly entities: readonly { readonly name: string; readonly key: 'customer_id' | 'terminal_id' }[];
  /** Longest window plus its delay: how far back a read can reach. */
  readonly lookbackMs: number;
  /** One query per entity, in `entities` order. */
  queries(tx: TxInput): WindowQuery[];
  /**
   * The feature vector of `tx`, given each entity's records from `queries(tx)`. The transaction counts exactly
   * once whether or not the store holds it already; equal timestamps count in arrival order.
   * Records outside an entity's query range are ignored, so a store may hand over more than it was asked for.
   * Empty record lists give the documented defaults: the current transaction alone, no terminal history.
   */
  compute(tx: TxInput, windows: readonly RecordColumns[], out?: Float64Array): Float64Array;
}

const aggregate: Record<Aggregation, (tx: TxInput, s: WindowStats, spanMs: number) => number> = {
  count: (_tx, s) => s.count,
  mean_amount: (_tx, s) => (s.count === 0 ? 0 : s.sum / s.count),
  fraud_rate: (_tx, s) => (s.count === 0 ? 0 : s.frauds / s.count),
  amount_ratio_to_prior_mean: (tx, s) => {
    const mean = s.priorCount === 0 ? 0 : s.priorSum / s.priorCount;
    return mean === 0 ? 1 : tx.amount / mean;
  },
  seconds_since_previous: (tx, s, spanMs) =>
    Number.isFinite(s.prevT) ? (tx.t - s.prevT) / SECOND_MS : spanMs / SECOND_MS,
};

export function compileFeatureSet(definition: FeatureSet): CompiledFeatureSet {
  const entities = Object.entries(definition.entities).map(([name, e]) => ({ name, key: e.key }));
  const entityIndex = new Map(entities.map((e, i) => [e.name, i]));
  const specs: WindowSpec[] = [];
  const specIndex = new Map<string, number>();
  const specFor = (f: WindowFeature): number => {
    const k = `${f.entity}|${f.window_days}|${f.delay_days}`;
    let i = specIndex.get(k);
    if (i === undefined) {
      i =
        specs.push({
          entityIndex: entityIndex.get(f.entity)!,
          spanMs: f.window_days * DAY_MS,
          delayMs: f.delay_days * DAY_MS,
        }) - 1;
      specIndex.set(k, i);
    }
    return i;
  };

  const computes: Compute[] = definition.features.map((f): Compute => {
    switch (f.kind) {
      case 'request':
        return (tx) => tx.amount;
      case 'calendar':
        if (f.calendar === 'weekend')
          return (tx) => (utcWeekday(tx.t) === 0 || utcWeekday(tx.t) === 6 ? 1 : 0);
        return (tx) => (utcHour(tx.t) <= f.night_end_hour ? 1 : 0);
      case 'window': {
        const i = specFor(f);
        const agg = aggregate[f.aggregation];
        const span = specs[i]!.spanMs;
        return (tx, stats) => agg(tx, stats[i]!, span);
      }
    }
  });

  // Per entity, the union of its windows: (t − max(span + delay), t − min(delay)].
  const ranges = entities.map((_, e) => {
    const mine = specs.filter((s) => s.entityIndex === e);
    return {
      back: Math.max(0, ...mine.map((s) => s.spanMs + s.delayMs)),
      lag: mine.length ? Math.min(...mine.map((s) => s.delayMs)) : 0,
    };
  });
  const lookbackMs = Math.max(0, ...ranges.map((r) => r.back));
  const byEnd = new Map<string, number[]>();
  for (const [i, spec] of specs.entries()) {
    const k = `${spec.entityIndex}|${spec.delayMs}`;
    byEnd.set(k, [...(byEnd.get(k) ?? []), i]);
  }
  const groups: WindowGroup[] = [...byEnd.values()].map((mine) => {
    mine.sort((a, b) => specs[a]!.spanMs - specs[b]!.spanMs);
    const { entityIndex, delayMs } = specs[mine[0]!]!;
    return { entityIndex, delayMs, specs: mine, spans: mine.map((i) => specs[i]!.spanMs) };
  });
  const stats: WindowStats[] = specs.map(() => ({
    count: 0,
    sum: 0,
    frauds: 0,
    priorCount: 0,
    priorSum: 0,
    prevT: 0,
  }));

  return {
    id: featureSetId(definition),
    definition,
    names: definition.features.map((f) => f.name),
    entities,
    lookbackMs,
    queries(tx) {
      return entities.map((e, i) => ({
        entity: e.name,
        id: tx[e.key],
        from: tx.t - ranges[i]!.back,
        to: tx.t - ranges[i]!.lag,
      }));
    },
    compute(tx, windows, out = new Float64Array(computes.length)) {
      for (const g of groups) groupStats(tx, windows[g.entityIndex] ?? NO_RECORDS, g, stats);
      for (let i = 0; i < computes.length; i++) out[i] = computes[i]!(tx, stats);
      return out;
    },
  };
}

/**
 * Every window of one group in one backward pass from the group's end: the windows share their end and are
 * nested, so each one's aggregates are a prefix of the pass. The records are touched once, newest first.
 */
function groupStats(tx: TxInput, c: RecordColumns, g: WindowGroup, stats: readonly WindowStats[]): void {
  const { t, amount, fraud, start } = c;
  const hi = tx.t - g.delayMs;
  let end = c.end > start && t[c.end - 1]! <= hi ? c.end : upperBound(t, start, c.end, hi);
  // A window that ends at the transaction itself: records at the same instant count only if they arrived before it.
  const endsAtSelf = g.delayMs === 0;
  let selfFraud = 0;
  if (endsAtSelf)
    for (let k = end - 1; k >= start && t[k] === tx.t; k--)
      if (c.ids[k] === tx.id) {
        selfFraud = fraud[k]!;
        end = k;
        break;
      }
  const prevT = end > start ? t[end - 1]! : Number.NEGATIVE_INFINITY;
  let count = 0;
  let sum = 0;
  let frauds = 0;
  let k = end - 1;
  for (let w = 0; w < g.specs.length; w++) {
    const lo = hi - g.spans[w]!;
    for (; k >= start && t[k]! > lo; k--) {
      count++;
      sum += amount[k]!;
      frauds += fraud[k]!;
    }
    const s = stats[g.specs[w]!]!;
    if (endsAtSelf) {
      s.priorCount = count;
      s.priorSum = sum;
      s.count = count + 1;
      s.sum = sum + tx.amount;
      s.frauds = frauds + selfFraud;
      s.prevT = count > 0 ? prevT : Number.NEGATIVE_INFINITY;
    } else {
      s.count = count;
      s.sum = sum;
      s.frauds = frauds;
      s.priorCount = 0;
      s.priorSum = 0;
      s.prevT = Number.NEGATIVE_INFINITY;
    }
  }
}

/** First index in [lo, hi) whose time is greater than `x`; `t` is sorted there. */
export function upperBound(t: Float64Array, lo: number, hi: number, x: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (t[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface EntitySpec {
  readonly name: string;
  readonly key: 'customer_id' | 'terminal_id';
}

/** The entities every loaded feature set reads, so each event is written once for all of them. */
export function entityUnion(sets: readonly CompiledFeatureSet[]): EntitySpec[] {
  const byName = new Map<string, EntitySpec>();
  for (const s of sets) for (const e of s.entities) byName.set(e.name, e);
  return [...byName.values()];
}

export function transactionEvents(tx: TxInput, entities: readonly EntitySpec[]): StoreEvent[] {
  return entities.map((e) => ({ kind: 'tx', key: keyOf(e, tx), txId: tx.id, t: tx.t, amount: tx.amount }));
}

export function labelEvents(label: LabelInput, entities: readonly EntitySpec[]): StoreEvent[] {
  return entities.map((e) => ({
    kind: 'label',
    key: keyOf(e, label),
    txId: label.txId,
    t: label.t,
    fraud: label.fraud,
  }));
}

function keyOf(e: EntitySpec, x: { customer_id: string; terminal_id: string }): EntityKey {
  return { entity: e.name, id: x[e.key] };
}
