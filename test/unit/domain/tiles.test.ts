import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../../src/adapters/fs/feature-set-files.js';
import { clipBounds, planTiles, TILE_LEVELS, tileOf } from '../../../src/domain/features/tiles.js';
import { DAY_MS, HOUR_MS } from '../../../src/domain/features/time.js';

const T = Date.parse('2018-08-09T10:00:00Z');
/** Sorted, distinct bounds around T: on hour and day edges, next to them, anywhere. */
const bounds = fc
  .array(
    fc.oneof(
      fc.integer({ min: -40, max: 0 }).map((d) => Math.floor(T / DAY_MS) * DAY_MS + d * DAY_MS),
      fc.integer({ min: -40 * 24, max: 0 }).map((h) => Math.floor(T / HOUR_MS) * HOUR_MS + h * HOUR_MS),
      fc.integer({ min: -40 * DAY_MS, max: 0 }).map((o) => T + o),
      fc.integer({ min: -40 * 24, max: 0 }).map((h) => Math.floor(T / HOUR_MS) * HOUR_MS + h * HOUR_MS + 1),
    ),
    { minLength: 1, maxLength: 8 },
  )
  .map((xs) => [...new Set(xs)].sort((a, b) => a - b));

/** Every planned piece as (lo, hi]: raw hours and aggregate tiles, in plan order. */
function pieces(b: readonly number[]) {
  const plan = planTiles(b);
  const finest = TILE_LEVELS[0]!.ms;
  return {
    plan,
    raw: plan.raw.map((k) => ({ lo: k * finest, hi: (k + 1) * finest })),
    tiles: plan.index.map((k, i) => {
      const ms = TILE_LEVELS[plan.level[i]!]!.ms;
      return { lo: k * ms, hi: (k + 1) * ms };
    }),
  };
}

describe('planTiles', () => {
  it('covers (from, to] with disjoint pieces, aggregates holding no bound, raw hours each holding one', () => {
    fc.assert(
      fc.property(bounds, (b) => {
        const { raw, tiles } = pieces(b);
        const from = b[0]!;
        const to = b.at(-1)!;
        const holds = (p: { lo: number; hi: number }) => b.some((x) => p.lo < x && x <= p.hi);
        for (const p of tiles) {
          expect(holds(p), `tile (${p.lo}, ${p.hi}]`).toBe(false);
          expect(p.lo >= from && p.hi <= to).toBe(true);
        }
        for (const p of raw) expect(holds(p)).toBe(true);
        // Disjoint, and together they hold every instant of (from, to].
        const all = [...raw, ...tiles].sort((x, y) => x.lo - y.lo);
        for (let i = 1; i < all.length; i++) expect(all[i]!.lo).toBeGreaterThanOrEqual(all[i - 1]!.hi);
        if (to > from) {
          const covered = all.reduce((n, p) => n + Math.min(p.hi, to) - Math.max(p.lo, from), 0);
          expect(covered).toBe(to - from);
        } else expect(all).toEqual([]);
        // Aggregates come in time order.
        for (let i = 1; i < tiles.length; i++) expect(tiles[i]!.lo).toBeGreaterThanOrEqual(tiles[i - 1]!.hi);
      }),
    );
  });

  it('reads a bounded number of tiles for the shipped feature sets, whatever the time', () => {
    const sets = [...loadFeatureSets('features').values()];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 365 * DAY_MS }), (o) => {
        const t = T + o;
        for (const set of sets)
          for (const q of set.summaryQueries({ id: 'x', t, amount: 1, customer_id: 'c', terminal_id: 'm' })) {
            const { plan } = pieces(q.bounds);
            expect(plan.raw.length).toBeLessThanOrEqual(q.bounds.length);
            // Per bound at most 23 hours of its day; the days between bounds whole (30-day windows).
            expect(plan.index.length).toBeLessThanOrEqual(q.bounds.length * 23 + 31);
          }
      }),
    );
  });

  it('reads the finest tile ending at a bound raw: records at that instant may be ordered by arrival', () => {
    const edge = 100 * DAY_MS;
    const finest = TILE_LEVELS[0]!.ms;
    const plan = planTiles([edge - DAY_MS, edge]);
    // A bound on the lower edge of the range splits nothing; the upper one is held by every tile ending at it,
    // down to the finest, read raw; the rest of each split tile is read whole, one level down.
    expect(plan.raw).toEqual([tileOf(edge, finest)]);
    expect(plan.splitLevel).toEqual(TILE_LEVELS.slice(1).map((_, i) => TILE_LEVELS.length - 1 - i));
    expect(plan.splitIndex).toEqual(plan.splitLevel.map((l) => tileOf(edge, TILE_LEVELS[l]!.ms)));
    const whole = plan.index.map((k, i) => ({
      lo: k * TILE_LEVELS[plan.level[i]!]!.ms,
      ms: TILE_LEVELS[plan.level[i]!]!.ms,
    }));
    expect(whole.length).toBe(TILE_LEVELS.slice(1).reduce((n, l, i) => n + l.ms / TILE_LEVELS[i]!.ms - 1, 0));
    expect(whole.reduce((n, t) => n + t.ms, 0)).toBe(DAY_MS - finest);
    expect(Math.min(...whole.map((t) => t.lo))).toBe(edge - DAY_MS);
    const empty = { raw: [], level: [], index: [], splitLevel: [], splitIndex: [] };
    expect(planTiles([edge, edge])).toEqual(empty);
    expect(planTiles([])).toEqual(empty);
  });

  it('clips bounds at the horizon: the cutoff becomes the lower bound', () => {
    expect(clipBounds([1, 5, 9], 4)).toEqual([4, 5, 9]);
    expect(clipBounds([1, 5, 9], 0)).toEqual([0, 1, 5, 9]);
    expect(clipBounds([1, 5, 9], 9)).toEqual([]);
  });
});
