import { upperBound } from '../../domain/features/engine.js';
import type { Links, RecordColumns } from '../../domain/features/records.js';

/** One entity's records as growable columns sorted by (t, seq); trimming moves `start`, compaction is amortised. */
export class EntityColumns implements RecordColumns {
  start = 0;
  end = 0;
  ids: (string | undefined)[] = [];
  t = new Float64Array(4);
  seq = new Float64Array(4);
  amount = new Float64Array(4);
  fraud = new Uint8Array(4);
  /** Per row, its links; created by the first record that has any. */
  links: (Links | undefined)[] | undefined;

  /** Inserts after every record with time ≤ t: equal times keep arrival order. */
  insert(id: string, t: number, seq: number, amount: number, fraud: number, links?: Links): void {
    if (links && !this.links) this.links = new Array<Links | undefined>(this.end);
    if (this.end === this.t.length) this.makeRoom();
    const at =
      this.end > this.start && this.t[this.end - 1]! > t
        ? upperBound(this.t, this.start, this.end, t)
        : this.end;
    if (at < this.end) {
      this.t.copyWithin(at + 1, at, this.end);
      this.seq.copyWithin(at + 1, at, this.end);
      this.amount.copyWithin(at + 1, at, this.end);
      this.fraud.copyWithin(at + 1, at, this.end);
      this.ids.splice(at, 0, id);
      this.links?.splice(at, 0, links);
    } else {
      this.ids[at] = id;
      if (this.links) this.links[at] = links;
    }
    this.t[at] = t;
    this.seq[at] = seq;
    this.amount[at] = amount;
    this.fraud[at] = fraud;
    this.end++;
  }

  /** Drops records with time ≤ cutoff, and their ids from `index`. */
  trim(cutoff: number, index?: Set<string>): void {
    while (this.start < this.end && this.t[this.start]! <= cutoff) {
      index?.delete(this.ids[this.start]!);
      this.ids[this.start] = undefined;
      if (this.links) this.links[this.start] = undefined;
      this.start++;
    }
    if (this.start === this.end) {
      this.start = 0;
      this.end = 0;
      this.ids.length = 0;
      if (this.links) this.links.length = 0;
    }
  }

  /** Where the record `id` is, -1 if nowhere: looked for at time `t` first, then everywhere. */
  indexOf(id: string, t: number): number {
    for (let k = upperBound(this.t, this.start, this.end, t) - 1; k >= this.start && this.t[k] === t; k--)
      if (this.ids[k] === id) return k;
    for (let k = this.end - 1; k >= this.start; k--) if (this.ids[k] === id) return k;
    return -1;
  }

  private makeRoom(): void {
    const live = this.end - this.start;
    if (this.start > 0 && live < this.t.length / 2) {
      // Compact in place: the dead prefix is at least half the capacity, so this is amortised O(1) per insert.
      this.t.copyWithin(0, this.start, this.end);
      this.seq.copyWithin(0, this.start, this.end);
      this.amount.copyWithin(0, this.start, this.end);
      this.fraud.copyWithin(0, this.start, this.end);
      this.ids = this.ids.slice(this.start, this.end);
      this.links = this.links?.slice(this.start, this.end);
    } else {
      const grow = <T extends Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a.subarray(this.start, this.end));
        return b;
      };
      this.t = grow(this.t, (n) => new Float64Array(n));
      this.seq = grow(this.seq, (n) => new Float64Array(n));
      this.amount = grow(this.amount, (n) => new Float64Array(n));
      this.fraud = grow(this.fraud, (n) => new Uint8Array(n));
      this.ids = this.ids.slice(this.start, this.end);
      this.links = this.links?.slice(this.start, this.end);
    }
    this.end = live;
    this.start = 0;
  }
}
