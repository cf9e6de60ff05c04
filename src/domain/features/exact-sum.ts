/**
 * An exact sum of doubles, read as the double nearest to it.
 *
 * Why the engine sums amounts this way: a window's sum may come from raw records alone (the backfill, raw
 * reads) or from raw records plus tile aggregates that writers added up in their own order (bounded reads,
 * see tiles.ts). Plain floating-point addition gives a different last bit for each order; an exact sum rounded
 * once gives the same double for the same amounts, however they were split and in whatever order they were
 * added. That is what keeps online = offline and every store equal bit for bit.
 *
 * The sum is held as parts p0 + p1 + … whose exact total is the sum: each addition is an error-free two-sum
 * into p0 whose rounding error cascades into p1, and so on (the Redis store's tiles keep their sums the same
 * way, lua/apply.lua). Money amounts need two parts (a double and its rounding error) until the sum's span
 * exceeds 106 bits, so the common case is a dozen flops and `p0 + p1`, which IEEE rounds correctly.
 */
export class ExactSum {
  private p = new Float64Array(4);
  private n = 0;

  reset(): void {
    this.n = 0;
  }

  add(x: number): void {
    const p = this.p;
    for (let i = 0; x !== 0; i++) {
      if (i === this.n) {
        if (i === p.length) {
          this.p = new Float64Array(2 * p.length);
          this.p.set(p);
          this.p[i] = x;
        } else p[i] = x;
        this.n = i + 1;
        return;
      }
      // Knuth's two-sum: a + x = s + e exactly.
      const a = p[i]!;
      const s = a + x;
      const bp = s - a;
      const e = a - (s - bp) + (x - bp);
      p[i] = s;
      x = e;
    }
  }

  /** Adds the parts `parts[from]` to `parts[to - 1]` (another exact sum, e.g. a tile's). */
  addParts(parts: ArrayLike<number>, from: number, to: number): void {
    for (let k = from; k < to; k++) this.add(parts[k]!);
  }

  /** The parts, for keeping this sum in a tile: their exact total is the sum. */
  parts(): number[] {
    return Array.from(this.p.subarray(0, this.n));
  }

  copyFrom(other: ExactSum): void {
    if (this.p.length < other.n) this.p = new Float64Array(other.p.length);
    this.p.set(other.p.subarray(0, other.n));
    this.n = other.n;
  }

  /** The double nearest to the exact sum (ties to even). */
  value(): number {
    if (this.n <= 2) return this.n === 0 ? 0 : this.n === 1 ? this.p[0]! : this.p[0]! + this.p[1]!;
    return fsum(this.p.subarray(0, this.n));
  }
}

/**
 * The correctly rounded sum of any doubles: Shewchuk's non-overlapping partials and the final rounding of
 * Python's `math.fsum`. Only for sums that outgrew two parts.
 */
export function fsum(xs: ArrayLike<number>): number {
  const p: number[] = [];
  for (let k = 0; k < xs.length; k++) {
    let x = xs[k]!;
    let i = 0;
    for (let j = 0; j < p.length; j++) {
      let y = p[j]!;
      if (Math.abs(x) < Math.abs(y)) {
        const swap = x;
        x = y;
        y = swap;
      }
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) p[i++] = lo;
      x = hi;
    }
    p.length = i;
    p.push(x);
  }
  let n = p.length;
  if (n === 0) return 0;
  let hi = p[--n]!;
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = p[--n]!;
    hi = x + y;
    const yr = hi - x;
    lo = y - yr;
    if (lo !== 0) break;
  }
  // Half-way cases: if the partials below have the sign of `lo`, hi + 2·lo is the nearer double.
  if (n > 0 && ((lo < 0 && p[n - 1]! < 0) || (lo > 0 && p[n - 1]! > 0))) {
    const y = lo * 2;
    const x = hi + y;
    const yr = x - hi;
    if (y === yr) hi = x;
  }
  return hi;
}
