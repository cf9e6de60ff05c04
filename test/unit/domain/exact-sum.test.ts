import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExactSum, fsum } from '../../../src/domain/features/exact-sum.js';

/** x = m · 2^e exactly, m an integer (a finite, non-zero, normal double). */
function split(x: number): { m: bigint; e: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const sign = bits >> 63n ? -1n : 1n;
  const exponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  return exponent === 0
    ? { m: sign * fraction, e: -1074 }
    : { m: sign * (fraction | (1n << 52n)), e: exponent - 1075 };
}

/** The double nearest to the exact sum, by integer arithmetic: sharing nothing with the code under test. */
function reference(xs: readonly number[]): number {
  const parts = xs.filter((x) => x !== 0).map(split);
  if (parts.length === 0) return 0;
  const e = Math.min(...parts.map((p) => p.e));
  const n = parts.reduce((s, p) => s + (p.m << BigInt(p.e - e)), 0n);
  // Number() of a BigInt rounds to nearest, ties to even; scaling by a power of two is then exact.
  return Number(n) * 2 ** e;
}

const amounts = fc.array(
  fc.oneof(
    fc.integer({ min: 0, max: 100_000_000 }).map((c) => c / 100),
    // The reference scales by powers of two: no subnormals.
    fc
      .double({ min: -1e9, max: 1e9, noNaN: true, noDefaultInfinity: true })
      .filter((x) => x === 0 || Math.abs(x) >= 1e-200),
    fc.constantFrom(0.1, 0.2, 0.3, 1e-7, 123456.789, 57.16, 2 ** 53, 1, -1),
  ),
  { maxLength: 200 },
);

const sumOf = (xs: readonly number[]) => {
  const s = new ExactSum();
  for (const x of xs) s.add(x);
  return s;
};

describe('ExactSum', () => {
  it('is the double nearest to the exact sum', () => {
    fc.assert(
      fc.property(amounts, (xs) => {
        expect(sumOf(xs).value()).toBe(reference(xs));
        expect(fsum(xs)).toBe(reference(xs));
      }),
    );
  });

  it('gives the same double however the amounts are split into sums of parts and in whatever order', () => {
    fc.assert(
      fc.property(amounts, fc.array(fc.nat()), (xs, cuts) => {
        const shuffled = [...xs].reverse();
        // Split into chunks at the cuts, sum each chunk on its own, then add the chunks' parts.
        const total = new ExactSum();
        let at = 0;
        for (const c of [...cuts.map((k) => k % (xs.length + 1)).sort((a, b) => a - b), xs.length]) {
          const parts = sumOf(shuffled.slice(at, c)).parts();
          total.addParts(parts, 0, parts.length);
          at = Math.max(at, c);
        }
        expect(total.value()).toBe(sumOf(xs).value());
      }),
    );
  });

  it('keeps sums of money amounts in two parts', () => {
    const s = new ExactSum();
    for (let i = 0; i < 50_000; i++) s.add(((i * 7919) % 20_000) / 100);
    expect(s.parts().length).toBeLessThanOrEqual(2);
    // Plain addition drifts; the exact sum is the decimal sum's nearest double here.
    expect(s.value()).toBe(reference(Array.from({ length: 50_000 }, (_, i) => ((i * 7919) % 20_000) / 100)));
  });

  it('copies, resets and adds after a copy independently', () => {
    const a = sumOf([0.1, 0.2]);
    const b = new ExactSum();
    b.copyFrom(a);
    b.add(0.3);
    expect(a.value()).toBe(reference([0.1, 0.2]));
    expect(b.value()).toBe(reference([0.1, 0.2, 0.3]));
    a.reset();
    expect(a.value()).toBe(0);
  });
});
