/**
 * Numbers read in place from the text of Redis replies, without a substring per number: a score parses a few
 * hundred of them.
 */

/** The integer written in v[from, to): event times and arrival numbers. */
export function integer(v: string, from: number, to: number): number {
  const negative = v.charCodeAt(from) === MINUS;
  let n = 0;
  for (let i = negative ? from + 1 : from; i < to; i++) n = n * 10 + v.charCodeAt(i) - ZERO;
  return negative ? -n : n;
}

/**
 * The decimal number written in v[from, to), as `Number` reads it, without a substring: up to 15 digits with an
 * optional sign and point are an exact integer divided by an exact power of ten, and IEEE division rounds that
 * quotient correctly (Clinger's fast path, "How to read floating point numbers accurately", PLDI 1990). Anything
 * else (an exponent, more digits) goes to `Number`.
 */
export function decimal(v: string, from: number, to: number): number {
  const negative = v.charCodeAt(from) === MINUS;
  let m = 0;
  let digits = 0;
  let point = -1;
  for (let i = negative ? from + 1 : from; i < to; i++) {
    const ch = v.charCodeAt(i);
    if (ch === DOT && point < 0) point = i;
    else if (ch >= ZERO && ch <= ZERO + 9 && digits < 15) {
      m = m * 10 + ch - ZERO;
      digits++;
    } else return Number(v.slice(from, to));
  }
  if (digits === 0) return Number(v.slice(from, to));
  const x = point < 0 ? m : m / POW10[to - point - 1]!;
  return negative ? -x : x;
}

/**
 * The space-separated numbers written in v[from, to), each as `Number` reads it: what
 * `v.slice(from, to).split(' ').map(Number)` gives, without a substring or an array per number (a tile's exact sum
 * parts; that split was most of a hot terminal's read in a profile).
 */
export function numbersIn(v: string, from: number, to: number): number[] {
  const out: number[] = [];
  for (let a = from; ; ) {
    let b = v.indexOf(' ', a);
    if (b < 0 || b > to) b = to;
    out.push(decimal(v, a, b));
    if (b >= to) return out;
    a = b + 1;
  }
}

// Built by multiplying: each step is exact (10^15 < 2^53), whatever `**` does.
const POW10: number[] = [1];
for (let k = 1; k <= 15; k++) POW10.push(POW10[k - 1]! * 10);

const MINUS = '-'.charCodeAt(0);
const ZERO = '0'.charCodeAt(0);
const DOT = '.'.charCodeAt(0);
