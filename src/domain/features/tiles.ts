import type { TileColumns } from './records.js';
import { DAY_MS, HOUR_MS } from './time.js';

const MINUTE_MS = 60_000;

/**
 * Time tiles: how a store answers a window query with work bounded by the windows, not by the history.
 *
 * Writers keep, per entity, an aggregate of every tile at every level (count, fraud count, newest time, exact
 * amount sum) and the raw records grouped by tile of the finest level. A read of windows with bounds
 * b0 < b1 < … < bm (the query's `bounds`; every window of the entity is (bi, bj]) takes the coarsest tiles
 * that hold no bound, and the raw records of the finest tiles that do (`planTiles`). Each tile then lies
 * wholly inside or wholly outside every window, so the engine adds whole tiles and filters only the raw
 * records by time: the windows stay exact — half-open, with ties at the transaction's own time ordered by
 * arrival, and labels counted in whatever tile their transaction sits.
 *
 * Tile (k·size, (k+1)·size] is tile k: half-open like the windows, so a window bound on a tile edge splits
 * nothing. Days and the tiles inside them are UTC, counted from the epoch.
 *
 * Why a day, six hours, an hour and ten minutes: every window is a whole number of days (`window_days`,
 * `delay_days`), so each bound splits one day and the days between bounds are read whole — about 30 day
 * aggregates for a 30-day window. A split day is read as four six-hour tiles, a split six-hour tile as six
 * hours, a split hour as six ten-minute tiles, and only the ten-minute tile that holds the bound is read raw:
 * per bound at most 3 + 5 + 5 aggregates and ten minutes of records. A read of the shipped sets (four bounds per
 * entity) is so at most ~85 aggregates and the records of four ten-minute tiles whatever the history — for a
 * terminal with 50,000 transactions in its 30 days (~70 an hour) ~66 aggregates and ~35 records. A store that
 * keeps a tile of one record as that record looks into a split tile only when it holds two or more, so a
 * card's read is a handful of values. Measured on that terminal (bench/hot-entity.ts): hour and day tiles
 * alone read ~110 aggregates and ~280 records and cost 1.6× as much per read. More levels would read less and
 * write more: every event of a busy entity updates one aggregate per level (four), while a quiet entity's
 * tiles of one record are the record itself, so the finer levels cost nothing until two records share a tile.
 * (A store may also read a small entity's records whole: that too is bounded, by the size it keeps such
 * entities to.)
 */
export interface TileLevel {
  /** Field-name letter in the Redis layout. */
  readonly name: string;
  readonly ms: number;
}

/** Finest first; each size a whole multiple of the one before. Raw records are grouped by finest tile. */
export const TILE_LEVELS: readonly TileLevel[] = [
  { name: 'm', ms: 10 * MINUTE_MS },
  { name: 'h', ms: HOUR_MS },
  { name: 'q', ms: 6 * HOUR_MS },
  { name: 'd', ms: DAY_MS },
];

/** The tile of `size` that holds time t: tile k covers (k·size, (k+1)·size]. */
export function tileOf(t: number, size: number): number {
  return Math.ceil(t / size) - 1;
}

export interface TilePlan {
  /** Finest tiles whose raw records are read (each holds a bound), ascending. */
  readonly raw: number[];
  /** Aggregates to read, in time order: `levels[level[i]]` tile `index[i]`. */
  readonly level: number[];
  readonly index: number[];
  /**
   * The coarser tiles that hold a bound, which the plan splits into the tiles above (a store that keeps a tile
   * of one record as that record, with nothing below it, reads these first and descends only into aggregates).
   */
  readonly splitLevel: number[];
  readonly splitIndex: number[];
}

/**
 * The tiles covering (bounds[0], bounds[last]]: the coarsest that hold no bound (a bound b is held by
 * (lo, hi] when lo < b ≤ hi, so the tile ending at the transaction's own time is read raw: records at that
 * instant count only if they arrived before it), and the finest that hold one, raw. `bounds` ascending.
 */
export function planTiles(bounds: readonly number[], levels: readonly TileLevel[] = TILE_LEVELS): TilePlan {
  const plan: TilePlan = { raw: [], level: [], index: [], splitLevel: [], splitIndex: [] };
  const n = bounds.length;
  if (n === 0) return plan;
  const from = bounds[0]!;
  const to = bounds[n - 1]!;
  if (!(to > from)) return plan;
  const holdsBound = (lo: number, hi: number) => {
    // The first bound after lo, by binary search.
    let a = 0;
    let b = n;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (bounds[mid]! <= lo) a = mid + 1;
      else b = mid;
    }
    return a < n && bounds[a]! <= hi;
  };
  const visit = (level: number, k: number): void => {
    const ms = levels[level]!.ms;
    const lo = k * ms;
    const hi = lo + ms;
    if (hi <= from || lo >= to) return;
    if (!holdsBound(lo, hi)) {
      plan.level.push(level);
      plan.index.push(k);
    } else if (level === 0) plan.raw.push(k);
    else {
      plan.splitLevel.push(level);
      plan.splitIndex.push(k);
      const ratio = ms / levels[level - 1]!.ms;
      for (let c = k * ratio; c < (k + 1) * ratio; c++) visit(level - 1, c);
    }
  };
  const top = levels.length - 1;
  const size = levels[top]!.ms;
  for (let k = tileOf(from, size); k <= tileOf(to, size); k++) visit(top, k);
  return plan;
}

/** Bounds as a read past the store's horizon sees them: records at or before `cutoff` are gone. */
export function clipBounds(bounds: readonly number[], cutoff: number): number[] {
  const kept = bounds.filter((b) => b > cutoff);
  return kept.length === 0 ? [] : [cutoff, ...kept];
}

/** A tile's distinct links: other entity name → id → the time of the tile's first record with it. */
export type TileLinks = ReadonlyMap<string, ReadonlyMap<string, number>>;

/** Collects tile aggregates, in time order, into the columns of a read's answer. Empty tiles are left out. */
export class TileColumnsBuilder {
  private readonly c = {
    lo: [] as number[],
    hi: [] as number[],
    count: [] as number[],
    frauds: [] as number[],
    maxT: [] as number[],
    sumStart: [0],
    sumParts: [] as number[],
    linkStart: [0],
    linkEntity: [] as string[],
    linkId: [] as string[],
    linkFirst: [] as number[],
  };

  push(
    lo: number,
    hi: number,
    count: number,
    frauds: number,
    maxT: number,
    parts: ArrayLike<number>,
    from = 0,
    to = parts.length,
    links?: TileLinks,
  ): void {
    if (count <= 0) return;
    const c = this.c;
    c.lo.push(lo);
    c.hi.push(hi);
    c.count.push(count);
    c.frauds.push(frauds);
    c.maxT.push(maxT);
    for (let i = from; i < to; i++) c.sumParts.push(parts[i]!);
    c.sumStart.push(c.sumParts.length);
    if (links)
      for (const [entity, ids] of links)
        for (const [id, first] of ids) {
          c.linkEntity.push(entity);
          c.linkId.push(id);
          c.linkFirst.push(first);
        }
    c.linkStart.push(c.linkId.length);
  }

  get size(): number {
    return this.c.lo.length;
  }

  build(): TileColumns {
    const { linkStart, linkEntity, linkId, linkFirst, ...rest } = this.c;
    return linkId.length === 0 ? rest : this.c;
  }
}

export const NO_TILES: TileColumns = new TileColumnsBuilder().build();
