import {
  type Aggregation,
  type FeatureSet,
  featureSetId,
  type KeyField,
  LinkAggregations,
  OptionalKeyFields,
  type WindowFeature,
} from './definition.js';
import { ExactSum } from './exact-sum.js';
import { ipPrefix } from './keys.js';
import {
  type DistinctCounts,
  type EntityKey,
  type Links,
  NO_RECORDS,
  type StoreEvent,
  type SummaryQuery,
  type TileColumns,
  type WindowQuery,
  type WindowSummary,
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
  /** Optional request fields (features keyed by them take their defaults without them). */
  readonly device_id?: string | undefined;
  readonly ip?: string | undefined;
  /** Derived from `ip` when absent (keys.ts); give it to save the parse. */
  readonly ip_prefix?: string | undefined;
}

/** The id a transaction has for an entity keyed by `field`; undefined when the request lacks it. */
export function keyValue(tx: TxInput, field: KeyField): string | undefined {
  if (field === 'ip_prefix') return tx.ip_prefix ?? (tx.ip === undefined ? undefined : ipPrefix(tx.ip));
  return tx[field];
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
  /** The transaction has an id for the entity (else every aggregate is the empty window's). */
  present: boolean;
  /** Per other entity (`of`): distinct ids in the window, this transaction's included when the window ends at it. */
  distinct: Record<string, number>;
  /** Per other entity: time of the earliest earlier record with this transaction's id for it; +∞ when none. */
  firstWith: Record<string, number>;
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
  /** Some feature of these windows reads the amount sum (a mean or a ratio). */
  readonly needsSum: boolean;
  readonly key: KeyField;
  /** The other entities whose ids its link features read (distinct counts, novelty). */
  readonly links: readonly LinkSpec[];
}

export interface LinkSpec {
  readonly name: string;
  readonly key: KeyField;
  /** Some feature reads the time of the transaction's own id with it (novelty: new_with, seconds_since_first_with). */
  readonly novelty?: boolean;
}

type Compute = (tx: TxInput, stats: readonly WindowStats[]) => number;

export interface CompiledFeatureSet {
  /** e.g. `transaction_v1`, the name manifests refer to. */
  readonly id: string;
  readonly definition: FeatureSet;
  readonly names: readonly string[];
  readonly entities: readonly EntitySpec[];
  /** Longest window plus its delay: how far back a read can reach. */
  readonly lookbackMs: number;
  /**
   * Per entity (in `entities` order), how long before the transaction each bound of its windows lies, in ms,
   * largest first: the bounds of a transaction at t are t − offset, ascending.
   */
  readonly offsets: readonly (readonly number[])[];
  /** One query per entity, in `entities` order: every record of the range its windows span. */
  queries(tx: TxInput): WindowQuery[];
  /** One query per entity, in `entities` order, with every bound of its windows: the bounded read. */
  summaryQueries(tx: TxInput): SummaryQuery[];
  /**
   * The feature vector of `tx`, given each entity's records from `queries(tx)`, or its summary from
   * `summaryQueries(tx)` (raw records plus whole-tile aggregates; any bounds that include this set's). The
   * transaction counts exactly once whether or not the store holds it already; equal timestamps count in
   * arrival order. Records and tiles outside an entity's windows are ignored, so a store may hand over more than
   * it was asked for; a tile that straddles a window bound is refused (it cannot be counted exactly).
   * Empty record lists give the documented defaults: the current transaction alone, no terminal history.
   * Amount sums are exact sums rounded once (exact-sum.ts): the same double however a store split them.
   */
  compute(tx: TxInput, windows: readonly WindowSummary[], out?: Float64Array): Float64Array;
  /** Names of the features that take their documented default because `tx` lacks a field they are keyed by. */
  defaulted(tx: TxInput): string[];
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
  // The link aggregations read `of` (compileFeatureSet binds it).
  count_distinct: () => Number.NaN,
  seconds_since_first_with: () => Number.NaN,
  new_with: () => Number.NaN,
};

function linkAggregate(
  f: WindowFeature & { of: string },
  ofKey: KeyField,
): (tx: TxInput, s: WindowStats, spanMs: number) => number {
  const of = f.of;
  switch (f.aggregation) {
    case 'count_distinct':
      return (_tx, s) => s.distinct[of] ?? 0;
    case 'seconds_since_first_with':
      return (tx, s, spanMs) => {
        const first = s.firstWith[of] ?? Number.POSITIVE_INFINITY;
        return s.present && keyValue(tx, ofKey) !== undefined && Number.isFinite(first)
          ? (tx.t - first) / SECOND_MS
          : spanMs / SECOND_MS;
      };
    default:
      return (tx, s) =>
        s.present && keyValue(tx, ofKey) !== undefined && !Number.isFinite(s.firstWith[of] ?? Number.NaN)
          ? 1
          : 0;
  }
}

export function compileFeatureSet(definition: FeatureSet): CompiledFeatureSet {
  const linkNames = definition.entities;
  const entities: EntitySpec[] = Object.entries(definition.entities).map(([name, e]) => {
    const links = [
      ...new Set(
        definition.features.flatMap((f) => (f.kind === 'window' && f.entity === name && f.of ? [f.of] : [])),
      ),
    ].map((of) => {
      const novelty = definition.features.some(
        (f) => f.kind === 'window' && f.entity === name && f.of === of && f.aggregation !== 'count_distinct',
      );
      return novelty ? { name: of, key: linkNames[of]!.key, novelty } : { name: of, key: linkNames[of]!.key };
    });
    const linksEndAtSelf = definition.features.every(
      (f) => !(f.kind === 'window' && f.entity === name && f.of) || f.delay_days === 0,
    );
    return links.length ? { name, key: e.key, links, linksEndAtSelf } : { name, key: e.key };
  });
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

  const needsSum = new Set<number>();
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
        if (f.aggregation === 'mean_amount' || f.aggregation === 'amount_ratio_to_prior_mean')
          needsSum.add(i);
        const agg = LinkAggregations.includes(f.aggregation)
          ? linkAggregate(f as WindowFeature & { of: string }, definition.entities[f.of!]!.key)
          : aggregate[f.aggregation];
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
  const offsets = entities.map((_, e) => {
    const mine = specs.filter((s) => s.entityIndex === e);
    const all = new Set(mine.flatMap((s) => [s.spanMs + s.delayMs, s.delayMs]));
    return all.size ? [...all].sort((a, b) => b - a) : [0];
  });
  const byEnd = new Map<string, number[]>();
  for (const [i, spec] of specs.entries()) {
    const k = `${spec.entityIndex}|${spec.delayMs}`;
    byEnd.set(k, [...(byEnd.get(k) ?? []), i]);
  }
  const groups: WindowGroup[] = [...byEnd.values()].map((mine) => {
    mine.sort((a, b) => specs[a]!.spanMs - specs[b]!.spanMs);
    const { entityIndex, delayMs } = specs[mine[0]!]!;
    const entity = entities[entityIndex]!;
    // Every link feature of the entity is read with every window of the group: a handful of ids more per record.
    return {
      entityIndex,
      delayMs,
      specs: mine,
      spans: mine.map((i) => specs[i]!.spanMs),
      needsSum: mine.some((i) => needsSum.has(i)),
      key: entity.key,
      links: entity.links ?? [],
    };
  });
  const stats: WindowStats[] = specs.map(() => ({
    count: 0,
    sum: 0,
    frauds: 0,
    priorCount: 0,
    priorSum: 0,
    prevT: 0,
    present: true,
    distinct: {},
    firstWith: {},
  }));
  const optional = definition.features.flatMap((f) => {
    if (f.kind !== 'window') return [];
    const fields = [definition.entities[f.entity]!.key];
    // A distinct count without the transaction's own `of` id is still the history's; novelty is not.
    if (f.of && f.aggregation !== 'count_distinct') fields.push(definition.entities[f.of]!.key);
    const missing = fields.filter((k) => OptionalKeyFields.includes(k));
    return missing.length ? [{ name: f.name, fields: missing }] : [];
  });

  return {
    id: featureSetId(definition),
    definition,
    names: definition.features.map((f) => f.name),
    entities,
    lookbackMs,
    offsets,
    queries(tx) {
      return entities.map((e, i) => ({
        entity: e.name,
        id: keyValue(tx, e.key) ?? '',
        from: tx.t - ranges[i]!.back,
        to: tx.t - ranges[i]!.lag,
      }));
    },
    summaryQueries(tx) {
      return entities.map((e, i) => summaryQuery(e, tx, offsets[i]!));
    },
    compute(tx, windows, out = new Float64Array(computes.length)) {
      for (const g of groups) groupStats(tx, windows[g.entityIndex] ?? NO_RECORDS, g, stats);
      for (let i = 0; i < computes.length; i++) out[i] = computes[i]!(tx, stats);
      return out;
    },
    defaulted(tx) {
      const out: string[] = [];
      for (const o of optional) if (o.fields.some((k) => keyValue(tx, k) === undefined)) out.push(o.name);
      return out;
    },
  };
}

const sums = new ExactSum();
const sumsWithSelf = new ExactSum();

/**
 * Every window of one group in one backward pass from the group's end: the windows share their end and are
 * nested, so each one's aggregates are a prefix of the pass. The raw records are touched once, newest first,
 * and so are the tiles (whole tiles between the raw records of a bounded read; see tiles.ts).
 */
function groupStats(tx: TxInput, c: WindowSummary, g: WindowGroup, stats: readonly WindowStats[]): void {
  if (keyValue(tx, g.key) === undefined) {
    absent(g, stats);
    return;
  }
  for (const i of g.specs) stats[i]!.present = true;
  if (g.links.length > 0) linkStats(tx, c, g, stats);
  plainStats(tx, c, g, stats);
}

function plainStats(tx: TxInput, c: WindowSummary, g: WindowGroup, stats: readonly WindowStats[]): void {
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
  let prevT = end > start ? t[end - 1]! : Number.NEGATIVE_INFINITY;
  // Tiles: skip those after the group's end; the last one before it holds the newest tiled record.
  const tiles = c.tiles;
  let j = tiles ? tiles.hi.length - 1 : -1;
  if (tiles) {
    for (; j >= 0 && tiles.hi[j]! > hi; j--) if (tiles.lo[j]! < hi) straddles(tiles, j, hi);
    // Records at the transaction's own instant are ordered by arrival: only raw records can say how.
    if (endsAtSelf && j >= 0 && tiles.maxT[j] === hi) straddles(tiles, j, hi);
    if (j >= 0 && tiles.maxT[j]! > prevT) prevT = tiles.maxT[j]!;
  }
  const needsSum = g.needsSum;
  sums.reset();
  let count = 0;
  let frauds = 0;
  let k = end - 1;
  for (let w = 0; w < g.specs.length; w++) {
    const lo = hi - g.spans[w]!;
    for (; k >= start && t[k]! > lo; k--) {
      count++;
      if (needsSum) sums.add(amount[k]!);
      frauds += fraud[k]!;
    }
    for (; j >= 0 && tiles!.hi[j]! > lo; j--) {
      if (tiles!.lo[j]! < lo) straddles(tiles!, j, lo);
      count += tiles!.count[j]!;
      frauds += tiles!.frauds[j]!;
      if (needsSum) sums.addParts(tiles!.sumParts, tiles!.sumStart[j]!, tiles!.sumStart[j + 1]!);
    }
    const s = stats[g.specs[w]!]!;
    const sum = needsSum ? sums.value() : 0;
    if (endsAtSelf) {
      s.priorCount = count;
      s.priorSum = sum;
      s.count = count + 1;
      if (needsSum) {
        sumsWithSelf.copyFrom(sums);
        sumsWithSelf.add(tx.amount);
        s.sum = sumsWithSelf.value();
      } else s.sum = 0;
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

/** The documented defaults of an entity the transaction has no id for: an empty window, without the transaction. */
function absent(g: WindowGroup, stats: readonly WindowStats[]): void {
  for (const i of g.specs) {
    const s = stats[i]!;
    s.count = 0;
    s.sum = 0;
    s.frauds = 0;
    s.priorCount = 0;
    s.priorSum = 0;
    s.prevT = Number.NEGATIVE_INFINITY;
    s.present = false;
    for (const l of g.links) {
      s.distinct[l.name] = 0;
      s.firstWith[l.name] = Number.POSITIVE_INFINITY;
    }
  }
}

const linkSets: Set<string>[] = [];

/**
 * groupStats for an entity with link features: the same pass plus, per other entity, the set of ids seen so far
 * (raw records' links and whole tiles' distinct sets) and the earliest time of this transaction's id. Kept apart
 * so the plain pass, the backfill's hot loop, pays nothing for it.
 */
function linkStats(tx: TxInput, c: WindowSummary, g: WindowGroup, stats: readonly WindowStats[]): void {
  const links = g.links;
  const mine: (string | undefined)[] = links.map((l) => keyValue(tx, l.key));
  const first: number[] = links.map(() => Number.POSITIVE_INFINITY);
  for (let l = 0; l < links.length; l++) {
    linkSets[l] ??= new Set();
    linkSets[l]!.clear();
  }
  const { t, start } = c;
  const hi = tx.t - g.delayMs;
  let end = upperBound(t, start, c.end, hi);
  const endsAtSelf = g.delayMs === 0;
  if (endsAtSelf)
    for (let k = end - 1; k >= start && t[k] === tx.t; k--)
      if (c.ids[k] === tx.id) {
        end = k;
        break;
      }
  const tiles = c.tiles;
  let j = tiles ? tiles.hi.length - 1 : -1;
  if (tiles) {
    for (; j >= 0 && tiles.hi[j]! > hi; j--) if (tiles.lo[j]! < hi) straddles(tiles, j, hi);
    if (endsAtSelf && j >= 0 && tiles.maxT[j] === hi) straddles(tiles, j, hi);
  }
  // Counts stand for windows that end at the transaction; a delayed group of the same entity reads them only when
  // it has no link feature (the query asks for counts only then), so its sets may be incomplete: unread.
  const counted = endsAtSelf ? c.distinct : undefined;
  if (counted && counted.bounds[counted.bounds.length - 1] !== hi)
    throw new RangeError(`distinct counts end at ${counted.bounds.at(-1)}, not at the window end ${hi}`);
  const rowLinks = c.links;
  let k = end - 1;
  for (let w = 0; w < g.specs.length; w++) {
    const lo = hi - g.spans[w]!;
    for (; k >= start && t[k]! > lo; k--) {
      const r: Links | undefined = rowLinks?.[k];
      if (!r) continue;
      for (let l = 0; l < links.length; l++) {
        const id = r[links[l]!.name];
        if (id === undefined) continue;
        linkSets[l]!.add(id);
        if (id === mine[l]) first[l] = t[k]!;
      }
    }
    for (; j >= 0 && tiles!.hi[j]! > lo; j--) {
      if (tiles!.lo[j]! < lo) straddles(tiles!, j, lo);
      const ls = tiles!.linkStart;
      if (!ls) continue;
      for (let e = ls[j]!; e < ls[j + 1]!; e++) {
        const entity = tiles!.linkEntity![e]!;
        for (let l = 0; l < links.length; l++) {
          if (links[l]!.name !== entity) continue;
          const id = tiles!.linkId![e]!;
          linkSets[l]!.add(id);
          if (id === mine[l] && tiles!.linkFirst![e]! < first[l]!) first[l] = tiles!.linkFirst![e]!;
        }
      }
    }
    const s = stats[g.specs[w]!]!;
    // The store's counts, when it gave them, stand for the sets (which then hold only this transaction's ids).
    const b = counted ? countedBound(counted, lo) : -1;
    for (let l = 0; l < links.length; l++) {
      const name = links[l]!.name;
      const own = mine[l];
      if (counted) {
        const newest = counted.ownNewest[name] ?? Number.NEGATIVE_INFINITY;
        s.distinct[name] =
          (counted.after[name]?.[b] ?? 0) + (own !== undefined && !(newest > counted.bounds[b]!) ? 1 : 0);
      } else
        s.distinct[name] =
          linkSets[l]!.size + (endsAtSelf && own !== undefined && !linkSets[l]!.has(own) ? 1 : 0);
      s.firstWith[name] = first[l]!;
    }
  }
}

/** The index of the window start `lo` among the counted bounds; one before the store's horizon reads as it. */
function countedBound(counted: DistinctCounts, lo: number): number {
  const b = counted.bounds;
  if (lo <= b[0]!) return 0;
  const i = b.indexOf(lo);
  if (i < 0 || i === b.length - 1) throw new RangeError(`no distinct count for the window start ${lo}`);
  return i;
}

function straddles(tiles: TileColumns, j: number, bound: number): never {
  throw new RangeError(
    `a tile (${tiles.lo[j]}, ${tiles.hi[j]}] holds the window bound ${bound}: a summary must split tiles at every bound`,
  );
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
  readonly key: KeyField;
  /** The other entities whose ids each record carries, for link features (absent: none). */
  readonly links?: readonly LinkSpec[];
  /** Every link feature's window ends at the transaction (no delay): a store may count distinct ids itself. */
  readonly linksEndAtSelf?: boolean;
}

/**
 * The entities every loaded feature set reads, so each event is written once for all of them; an entity's records
 * carry the links any set's features need.
 */
export function entityUnion(sets: readonly CompiledFeatureSet[]): EntitySpec[] {
  const byName = new Map<string, EntitySpec>();
  for (const s of sets)
    for (const e of s.entities) {
      const had = byName.get(e.name);
      const links = new Map<string, LinkSpec>();
      for (const l of [...(had?.links ?? []), ...(e.links ?? [])]) {
        const novelty = l.novelty || links.get(l.name)?.novelty;
        links.set(l.name, novelty ? { ...l, novelty } : l);
      }
      const endAtSelf = (x: EntitySpec | undefined) => !x?.links || x.linksEndAtSelf === true;
      byName.set(
        e.name,
        links.size
          ? {
              name: e.name,
              key: e.key,
              links: [...links.values()],
              linksEndAtSelf: endAtSelf(had) && endAtSelf(e),
            }
          : e,
      );
    }
  return [...byName.values()];
}

/**
 * The bounds of every window of every set, per entity of the union (in `entities` order), as offsets before the
 * transaction: one read per entity serves whichever set a transaction is scored with.
 */
export function unionOffsets(
  sets: readonly CompiledFeatureSet[],
  entities: readonly EntitySpec[],
): number[][] {
  return entities.map((e) => {
    const all = new Set<number>();
    for (const s of sets)
      s.entities.forEach((x, i) => {
        if (x.name === e.name) for (const o of s.offsets[i]!) all.add(o);
      });
    return all.size ? [...all].sort((a, b) => b - a) : [0];
  });
}

/** The bounded read of one entity's windows for a transaction: bounds t − offset, ascending. */
export function summaryQuery(e: EntitySpec, tx: TxInput, offsets: readonly number[]): SummaryQuery {
  const id = keyValue(tx, e.key);
  // Without the field (no device id, no IP) there is nothing to read: no bounds, no round trip.
  if (id === undefined) return { entity: e.name, id: '', bounds: [] };
  const bounds = new Array<number>(offsets.length);
  for (let i = 0; i < offsets.length; i++) bounds[i] = tx.t - offsets[i]!;
  if (!e.links || !e.linksEndAtSelf) return { entity: e.name, id, bounds };
  const distinct = e.links.map((l) => {
    const own = keyValue(tx, l.key);
    if (own === undefined) return { name: l.name };
    return l.novelty ? { name: l.name, own, novelty: true } : { name: l.name, own };
  });
  return { entity: e.name, id, bounds, distinct };
}

/** The links a record of `e` carries for `tx`; undefined when none. */
export function linksOf(e: EntitySpec, tx: TxInput): Links | undefined {
  if (!e.links) return undefined;
  let out: Record<string, string> | undefined;
  for (const l of e.links) {
    const id = keyValue(tx, l.key);
    if (id === undefined) continue;
    out ??= {};
    out[l.name] = id;
  }
  return out;
}

/** One write per entity the transaction has an id for: without a device id, no device entity is written. */
export function transactionEvents(tx: TxInput, entities: readonly EntitySpec[]): StoreEvent[] {
  const out: StoreEvent[] = [];
  for (const e of entities) {
    const id = keyValue(tx, e.key);
    if (id === undefined) continue;
    const links = linksOf(e, tx);
    const key: EntityKey = { entity: e.name, id };
    out.push(
      links
        ? { kind: 'tx', key, txId: tx.id, t: tx.t, amount: tx.amount, links }
        : { kind: 'tx', key, txId: tx.id, t: tx.t, amount: tx.amount },
    );
  }
  return out;
}

/** Labels name the customer and the terminal: they reach those entities only (fraud_rate is refused elsewhere). */
export function labelEvents(label: LabelInput, entities: readonly EntitySpec[]): StoreEvent[] {
  const out: StoreEvent[] = [];
  for (const e of entities)
    if (e.key === 'customer_id' || e.key === 'terminal_id')
      out.push({
        kind: 'label',
        key: { entity: e.name, id: label[e.key] },
        txId: label.txId,
        t: label.t,
        fraud: label.fraud,
      });
  return out;
}
