import { ExactSum } from '../../domain/features/exact-sum.js';
import type { Links, RecordColumns } from '../../domain/features/records.js';
import { TILE_LEVELS, type TileColumnsBuilder, type TileLinks, tileOf } from '../../domain/features/tiles.js';
import { NewestTimes } from './newest-times.js';

interface Aggregate {
  count: number;
  frauds: number;
  maxT: number;
  readonly sum: ExactSum;
  /** Distinct links of the tile's records: other entity → id → time of its first record (see TileColumns). */
  links: Map<string, Map<string, number>> | undefined;
}

/**
 * One entity's tile aggregates at every level of TILE_LEVELS (see domain/features/tiles.ts), kept in step with
 * its records by the in-memory store once a bounded read has asked for them: the backfill, which reads the
 * records directly, never pays for them.
 */
export class EntityTiles {
  private readonly levels = TILE_LEVELS.map(() => new Map<number, Aggregate>());
  /** Per level, no tile below this index exists: trimming starts there. */
  private readonly oldest = TILE_LEVELS.map(() => Number.POSITIVE_INFINITY);
  /** Per other entity, its ids' newest times: distinct counts without the tiles' sets (DistinctCounts). */
  readonly newest = new Map<string, NewestTimes>();

  static of(c: RecordColumns): EntityTiles {
    const tiles = new EntityTiles();
    for (let k = c.start; k < c.end; k++) tiles.add(c.t[k]!, c.amount[k]!, c.fraud[k]!, c.links?.[k]);
    return tiles;
  }

  add(t: number, amount: number, fraud: number, links?: Links): void {
    if (links)
      for (const entity in links) {
        let n = this.newest.get(entity);
        if (!n) {
          n = new NewestTimes();
          this.newest.set(entity, n);
        }
        n.add(links[entity]!, t);
      }
    TILE_LEVELS.forEach((level, l) => {
      const k = tileOf(t, level.ms);
      let a = this.levels[l]!.get(k);
      if (!a) {
        a = { count: 0, frauds: 0, maxT: t, sum: new ExactSum(), links: undefined };
        this.levels[l]!.set(k, a);
        if (k < this.oldest[l]!) this.oldest[l] = k;
      }
      a.count++;
      a.frauds += fraud;
      if (t > a.maxT) a.maxT = t;
      a.sum.add(amount);
      if (links)
        for (const entity in links) {
          a.links ??= new Map();
          let ids = a.links.get(entity);
          if (!ids) {
            ids = new Map();
            a.links.set(entity, ids);
          }
          const id = links[entity]!;
          const first = ids.get(id);
          if (first === undefined || t < first) ids.set(id, t);
        }
    });
  }

  /** A label changed the fraud flag of the record at time t by `delta` (±1). */
  relabel(t: number, delta: number): void {
    TILE_LEVELS.forEach((level, l) => {
      const a = this.levels[l]!.get(tileOf(t, level.ms));
      if (a) a.frauds += delta;
    });
  }

  /** Drops the tiles that lie wholly at or before `cutoff`; the one that holds it is read raw (see clipBounds). */
  trim(cutoff: number): void {
    for (const n of this.newest.values()) n.trim(cutoff);
    TILE_LEVELS.forEach((level, l) => {
      const tiles = this.levels[l]!;
      let k = this.oldest[l]!;
      if (tiles.size === 0) k = Number.POSITIVE_INFINITY;
      else for (; (k + 1) * level.ms <= cutoff; k++) tiles.delete(k);
      this.oldest[l] = k;
    });
  }

  /**
   * Appends tile `index` of level `level` to `out`, if it holds records; with `only`, its link set keeps just
   * those ids (other entity → id), as a read with DistinctCounts does.
   */
  collect(level: number, index: number, out: TileColumnsBuilder, only?: ReadonlyMap<string, string>): void {
    const a = this.levels[level]!.get(index);
    if (!a) return;
    const ms = TILE_LEVELS[level]!.ms;
    const parts = a.sum.parts();
    const links = only && a.links ? ownLinks(a.links, only) : a.links;
    out.push(index * ms, (index + 1) * ms, a.count, a.frauds, a.maxT, parts, 0, parts.length, links);
  }
}

function ownLinks(links: TileLinks, only: ReadonlyMap<string, string>): TileLinks | undefined {
  let out: Map<string, Map<string, number>> | undefined;
  for (const [entity, id] of only) {
    const first = links.get(entity)?.get(id);
    if (first === undefined) continue;
    out ??= new Map();
    out.set(entity, new Map([[id, first]]));
  }
  return out;
}
