/**
 * The engine's combination of tiles and raw records (issue 17, bounded reads), pure: a summary built here from
 * raw records (the planned raw hours, and every planned tile aggregated with its amounts added in a shuffled
 * order) gives the features the raw records give, bit for bit, for every feature set and for the union of
 * their bounds; and a tile that holds a window bound is refused rather than miscounted.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../../src/adapters/fs/feature-set-files.js';
import {
  type CompiledFeatureSet,
  entityUnion,
  summaryQuery,
  type TxInput,
  unionOffsets,
} from '../../../src/domain/features/engine.js';
import { ExactSum } from '../../../src/domain/features/exact-sum.js';
import type { RecordColumns, WindowSummary } from '../../../src/domain/features/records.js';
import { planTiles, TILE_LEVELS, TileColumnsBuilder } from '../../../src/domain/features/tiles.js';
import { DAY_MS, HOUR_MS } from '../../../src/domain/features/time.js';

const sets = [...loadFeatureSets('features').values()];
const entities = entityUnion(sets);
const offsets = unionOffsets(sets, entities);
const T = Date.parse('2018-08-09T00:00:00Z') + 10 * HOUR_MS;

interface Rec {
  id: string;
  t: number;
  amount: number;
  fraud: number;
}

function columns(recs: readonly Rec[]): RecordColumns {
  // Arrival order is the array's; the columns are sorted by (t, arrival).
  const order = recs.map((r, seq) => ({ ...r, seq })).sort((a, b) => a.t - b.t || a.seq - b.seq);
  return {
    start: 0,
    end: order.length,
    ids: order.map((r) => r.id),
    t: Float64Array.from(order, (r) => r.t),
    seq: Float64Array.from(order, (r) => r.seq),
    amount: Float64Array.from(order, (r) => r.amount),
    fraud: Uint8Array.from(order, (r) => r.fraud),
  };
}

/** What a store following the plan hands over for `bounds`, with each tile's sum added in a shuffled order. */
function summarize(c: RecordColumns, bounds: readonly number[], shuffle: number): WindowSummary {
  const plan = planTiles(bounds);
  const from = bounds[0]!;
  const to = bounds.at(-1)!;
  const keep: number[] = [];
  const finest = TILE_LEVELS[0]!.ms;
  for (const k of plan.raw)
    for (let i = c.start; i < c.end; i++)
      if (c.t[i]! > Math.max(from, k * finest) && c.t[i]! <= Math.min(to, (k + 1) * finest)) keep.push(i);
  const tiles = new TileColumnsBuilder();
  plan.index.forEach((k, p) => {
    const ms = TILE_LEVELS[plan.level[p]!]!.ms;
    const inside: number[] = [];
    for (let i = c.start; i < c.end; i++) if (c.t[i]! > k * ms && c.t[i]! <= (k + 1) * ms) inside.push(i);
    if (inside.length === 0) return;
    // Rotated: writers add in their own order.
    const rotated = inside.map((_, j) => inside[(j + shuffle) % inside.length]!);
    const sum = new ExactSum();
    for (const i of rotated) sum.add(c.amount[i]!);
    tiles.push(
      k * ms,
      (k + 1) * ms,
      inside.length,
      inside.reduce((n, i) => n + c.fraud[i]!, 0),
      Math.max(...inside.map((i) => c.t[i]!)),
      sum.parts(),
    );
  });
  return {
    start: 0,
    end: keep.length,
    ids: keep.map((i) => c.ids[i]),
    t: Float64Array.from(keep, (i) => c.t[i]!),
    seq: Float64Array.from(keep, (i) => c.seq[i]!),
    amount: Float64Array.from(keep, (i) => c.amount[i]!),
    fraud: Uint8Array.from(keep, (i) => c.fraud[i]!),
    tiles: tiles.build(),
  };
}

/** Times that meet bounds and tile edges: the transaction's own instant, the windows' bounds, hour edges. */
const time = fc.oneof(
  fc
    .constantFrom(0, 1, -1, DAY_MS, 7 * DAY_MS, 8 * DAY_MS, 14 * DAY_MS, 30 * DAY_MS, 37 * DAY_MS)
    .map((o) => T - o),
  fc.integer({ min: 0, max: 38 * 24 }).map((h) => T - h * HOUR_MS),
  fc.integer({ min: 0, max: 38 * DAY_MS }).map((o) => T - o),
  fc.integer({ min: 0, max: 38 * DAY_MS }).map((o) => T - Math.floor(o / 1000) * 1000),
);
const history = fc.array(
  fc.record({
    t: time,
    amount: fc.oneof(
      fc.integer({ min: 0, max: 20_000 }).map((c) => c / 100),
      fc.double({ min: 0, max: 1e6, noNaN: true }),
    ),
    fraud: fc.integer({ min: 0, max: 1 }),
  }),
  { maxLength: 300 },
);

/** Features of `tx` from raw records and from summaries, for `set`, reading `offsetsOf` bounds. */
function both(set: CompiledFeatureSet, tx: TxInput, raw: RecordColumns[], shuffle: number, union: boolean) {
  const summaries = set.entities.map((e, i) => {
    const u = entities.findIndex((x) => x.name === e.name);
    const q = summaryQuery(e, tx, union ? offsets[u]! : set.offsets[i]!);
    return summarize(raw[u]!, q.bounds, shuffle);
  });
  const windows = set.entities.map((e) => raw[entities.findIndex((x) => x.name === e.name)]!);
  return { tiled: [...set.compute(tx, summaries)], raw: [...set.compute(tx, windows)] };
}

describe('the engine over tiles and edge records', () => {
  it('gives the features raw records give, bit for bit, stored transaction or not', () => {
    fc.assert(
      fc.property(
        history,
        history,
        fc.nat(),
        fc.boolean(),
        fc.nat(),
        (mine, terminal, pick, union, shuffle) => {
          // The customer's records; the terminal's are its own plus the customer's.
          const c: Rec[] = mine.map((r, i) => ({ ...r, id: `c${i}` }));
          const m: Rec[] = [...c, ...terminal.map((r, i) => ({ ...r, id: `m${i}` }))];
          const stored = c.filter((r) => r.t === T);
          // Scored: one the store holds (at the transaction's instant, with records after it), or a new one.
          const self = stored.length > 0 && pick % 2 === 0 ? stored[pick % stored.length]! : undefined;
          const tx: TxInput = {
            id: self?.id ?? 'new',
            t: T,
            amount: self?.amount ?? 12.5,
            customer_id: 'C',
            terminal_id: 'M',
          };
          // In union order; the transaction has no device or IP, so the device and network entities are empty.
          const raw = entities.map((e) =>
            columns(e.name === 'customer' ? c : e.name === 'terminal' ? m : []),
          );
          for (const set of sets) {
            const { tiled, raw: expected } = both(set, tx, raw, shuffle, union);
            expect(tiled).toEqual(expected);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses a tile that holds a window bound, and one that holds records at the transaction’s instant', () => {
    const set = sets[0]!;
    const tx: TxInput = { id: 'x', t: T, amount: 1, customer_id: 'C', terminal_id: 'M' };
    const tile = (lo: number, hi: number, maxT = hi) => {
      const b = new TileColumnsBuilder();
      b.push(lo, hi, 1, 0, maxT, [1]);
      return { ...columns([]), tiles: b.build() };
    };
    const none = columns([]);
    // The customer's 1-day window starts at T − 1 d: a day tile across it cannot be counted.
    expect(() => set.compute(tx, [tile(T - DAY_MS - HOUR_MS, T - DAY_MS + HOUR_MS), none])).toThrow(
      RangeError,
    );
    // A tile ending at T that holds a record at T: the order of arrival at T is unknown.
    expect(() => set.compute(tx, [tile(T - HOUR_MS, T), none])).toThrow(RangeError);
    // Ending at T with its newest record before T: exact, counted.
    const v = set.compute(tx, [tile(T - HOUR_MS, T, T - 1), none]);
    expect(v[set.names.indexOf('CUSTOMER_ID_NB_TX_1DAY_WINDOW')]).toBe(2);
  });
});
