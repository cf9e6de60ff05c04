import { upperBound } from '../../domain/features/engine.js';

/**
 * The ids linked to one entity (the cards of a device), each with the time of its newest record, kept sorted by
 * that time: how many ids have a record after b is one binary search (see DistinctCounts in records.ts), the
 * in-memory counterpart of the Redis store's sorted set. Events arrive mostly in time order, so an update
 * usually moves one id to the end.
 */
export class NewestTimes {
  private readonly newest = new Map<string, number>();
  private times = new Float64Array(8);
  private ids: string[] = [];
  private n = 0;

  get size(): number {
    return this.n;
  }

  get(id: string): number | undefined {
    return this.newest.get(id);
  }

  /** A record of `id` at t: its newest time becomes t if later. */
  add(id: string, t: number): void {
    const had = this.newest.get(id);
    if (had !== undefined) {
      if (had >= t) return;
      this.remove(id, had);
    }
    this.newest.set(id, t);
    if (this.n === this.times.length) {
      const grown = new Float64Array(this.n * 2);
      grown.set(this.times);
      this.times = grown;
    }
    const at = upperBound(this.times, 0, this.n, t);
    this.times.copyWithin(at + 1, at, this.n);
    this.ids.splice(at, 0, id);
    this.times[at] = t;
    this.n++;
  }

  /** Ids whose newest record lies after t. */
  countAfter(t: number): number {
    return this.n - upperBound(this.times, 0, this.n, t);
  }

  /** Ids whose newest record lies at or after t. */
  countFrom(t: number): number {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.times[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    return this.n - lo;
  }

  /** Forgets the ids whose newest record is at or before `cutoff` (past the horizon). */
  trim(cutoff: number): void {
    const k = upperBound(this.times, 0, this.n, cutoff);
    if (k === 0) return;
    for (let i = 0; i < k; i++) this.newest.delete(this.ids[i]!);
    this.times.copyWithin(0, k, this.n);
    this.ids.splice(0, k);
    this.n -= k;
  }

  private remove(id: string, t: number): void {
    // The id sits among the entries at time t.
    let at = upperBound(this.times, 0, this.n, t) - 1;
    while (this.ids[at] !== id) at--;
    this.times.copyWithin(at, at + 1, this.n);
    this.ids.splice(at, 1);
    this.n--;
  }
}
