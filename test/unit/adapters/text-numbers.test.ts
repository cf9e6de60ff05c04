import { describe, expect, it } from 'vitest';
import { decimal, integer, numbersIn } from '../../../src/adapters/redis/text-numbers.js';
import { rng } from '../../helpers/generate.js';

/** `decimal` on the whole of `s` and embedded between other fields, as it meets text in a record. */
function readBoth(s: string): [number, number] {
  const line = `1533808800000 7 ${s} tx-1`;
  return [decimal(s, 0, s.length), decimal(line, 16, 16 + s.length)];
}

describe('decimal', () => {
  it('reads what Number reads, bit for bit, for amounts as String(amount) writes them', () => {
    const next = rng(17);
    for (let i = 0; i < 20_000; i++) {
      const cents = Math.floor(next() * 10 ** Math.floor(next() * 12));
      const amount = next() < 0.5 ? cents / 100 : next() * 10 ** Math.floor(next() * 8);
      const s = String(amount);
      for (const x of readBoth(s)) expect(Object.is(x, Number(s)), s).toBe(true);
    }
  });

  it('reads every shape Number reads: signs, a bare point, exponents, too many digits, zeros', () => {
    for (const s of [
      '0',
      '-0',
      '0.0',
      '57.16',
      '-57.16',
      '.5',
      '5.',
      '1e-7',
      '1.5e+21',
      '123456789012345',
      '1234567890123456',
      '0.1234567890123456789',
      '9007199254740993',
      '999999999999999.9',
      '0.000000000000001',
    ])
      for (const x of readBoth(s)) expect(Object.is(x, Number(s)), s).toBe(true);
  });

  it('gives what Number gives for text that is not a decimal: NaN, or 0 for nothing', () => {
    for (const s of ['', '-', '.', '1.2.3', '12a', 'abc', ' 5'])
      expect(Object.is(decimal(s, 0, s.length), Number(s)), s).toBe(true);
  });
});

describe('integer', () => {
  it('reads event times, arrival numbers and negative times in place', () => {
    const line = '1533808800000 42 -86400000';
    expect(integer(line, 0, 13)).toBe(1533808800000);
    expect(integer(line, 14, 16)).toBe(42);
    expect(integer(line, 17, line.length)).toBe(-86400000);
  });
});

describe('numbersIn', () => {
  it('reads what splitting on spaces and Number read, embedded in a line or not', () => {
    const next = rng(29);
    const shapes = ['57.16', '-0.5', '1e-7', '1.2345678901234567e+21', '', '0.30000000000000004', '12345'];
    for (let i = 0; i < 2_000; i++) {
      const n = 1 + Math.floor(next() * 4);
      const text = Array.from({ length: n }, () =>
        next() < 0.5 ? shapes[Math.floor(next() * shapes.length)]! : String(next() * 10 ** (next() * 12)),
      ).join(' ');
      const line = `d 17 3 0 600 ${text} |card=c1@5`;
      const from = 13;
      const to = from + text.length;
      const expected = text.split(' ').map(Number);
      expect(numbersIn(text, 0, text.length), text).toEqual(expected);
      expect(numbersIn(line, from, to), line).toEqual(expected);
    }
  });
});
