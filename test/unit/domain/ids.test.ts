import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Id } from '../../../src/domain/events.js';

/**
 * The id rule as the README states it: 1–128 characters (code points), well-formed, and no character of Unicode
 * category Z (separators), Cc (controls) or Cf (format characters), and no brace. The classification here
 * uses the categories directly (the schema is written with `\s`, which with Cc and Cf covers the same set).
 */
const REFUSED_CHAR = /^[\p{Z}\p{Cc}\p{Cf}{}]$/u;
const isSurrogate = (cp: number) => cp >= 0xd800 && cp <= 0xdfff;
const accepts = (s: string) => Id.safeParse(s).success;

/** Format characters named one by one, so the test does not rest on the regex engine's tables alone. */
const NAMED_FORMAT = [
  0xad, // soft hyphen
  0x600, // Arabic number sign
  0x61c, // Arabic letter mark
  0x6dd,
  0x70f,
  0x180e, // Mongolian vowel separator
  ...range(0x200b, 0x200f), // zero-width space, ZWNJ, ZWJ, LRM, RLM
  ...range(0x202a, 0x202e), // bidi embeddings and overrides
  ...range(0x2060, 0x2064), // word joiner, invisible operators
  ...range(0x2066, 0x2069), // bidi isolates
  0xfeff, // BOM, zero-width no-break space
  ...range(0xfff9, 0xfffb), // interlinear annotation
  0x110bd,
  ...range(0x1d173, 0x1d17a),
  0xe0001, // language tag
  ...range(0xe0020, 0xe007f), // tag characters
].map((cp) => String.fromCodePoint(cp));
const NAMED_OTHER = [
  '\u0000',
  '\t',
  '\n',
  '\r',
  '\u007f',
  '\u0085',
  '\u009f',
  ' ',
  '\u00a0',
  '\u1680',
].concat(['\u2000', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '{', '}']);

/** Every code point the rule refuses (surrogates aside, which are refused as ill-formed when alone). */
const ALL_REFUSED: string[] = [];
for (let cp = 0; cp <= 0x10ffff; cp++) {
  if (isSurrogate(cp)) continue;
  const c = String.fromCodePoint(cp);
  if (REFUSED_CHAR.test(c)) ALL_REFUSED.push(c);
}

/** A character the rule allows: any code point outside Z, Cc, Cf and the braces, BMP or astral. */
const allowed = (cps: fc.Arbitrary<number>) =>
  cps
    .filter((cp) => !isSurrogate(cp))
    .map((cp) => String.fromCodePoint(cp))
    .filter((c) => !REFUSED_CHAR.test(c));
const allowedBmp = allowed(fc.integer({ min: 0, max: 0xffff }));
const allowedAny = allowed(
  fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0x10000, max: 0x10ffff })),
);

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('ids', () => {
  it('name the format characters the README lists as Cf', () => {
    for (const c of NAMED_FORMAT) expect(/^\p{Cf}$/u.test(c), c.codePointAt(0)!.toString(16)).toBe(true);
  });

  it.each([
    ['zero-width space', 'cust\u200b1'],
    ['right-to-left override', 'cust\u202e1'],
    ['zero-width joiner', 'cust\u200d1'],
    ['bidi isolate', '\u2066cust1\u2069'],
    ['byte-order mark', '\ufeffcust1'],
    ['soft hyphen', 'cu\u00adst1'],
    ['tag character', 'cust1\u{e0041}'],
    ['no-break space', 'cust\u00a01'],
    ['line separator', 'cust\u20281'],
    ['control', 'cust\u00851'],
    ['brace', 'cust{1}'],
  ])('refuses an id with a %s', (_name, id) => {
    expect(accepts(id)).toBe(false);
  });

  it('refuses any string that holds a whitespace, control or format character or a brace', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 40 }),
        fc.oneof(fc.constantFrom(...NAMED_FORMAT, ...NAMED_OTHER), fc.constantFrom(...ALL_REFUSED)),
        fc.string({ unit: 'binary', maxLength: 40 }),
        (before, bad, after) => {
          expect(accepts(before + bad + after)).toBe(false);
        },
      ),
      { numRuns: 5000, seed: 15 },
    );
  });

  it('accepts any well-formed string of 1–128 characters without them', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.array(allowedBmp, { minLength: 1, maxLength: 128 }),
          fc.array(allowedAny, { minLength: 1, maxLength: 128 }),
        ),
        (chars) => {
          expect(accepts(chars.join(''))).toBe(true);
        },
      ),
      { numRuns: 5000, seed: 15 },
    );
  });

  it('decides generated grapheme strings (emoji sequences, combining marks) by the same rule', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }), (id) => {
        const allowed = [...id].every((c) => !REFUSED_CHAR.test(c)) && id.length <= 128;
        expect(accepts(id)).toBe(allowed);
      }),
      { numRuns: 5000, seed: 16 },
    );
  });

  it('decides every single BMP character by the stated categories', () => {
    const wrong: string[] = [];
    for (let cp = 0; cp <= 0xffff; cp++) {
      const c = String.fromCharCode(cp);
      if (accepts(c) !== (!isSurrogate(cp) && !REFUSED_CHAR.test(c))) wrong.push(cp.toString(16));
    }
    expect(wrong).toEqual([]);
  });

  it('counts length in characters (code points), astral ones included: 128 accepted, 129 refused', () => {
    expect(accepts('a'.repeat(128))).toBe(true);
    expect(accepts('a'.repeat(129))).toBe(false);
    expect(accepts('💳'.repeat(128))).toBe(true);
    expect(accepts(`${'💳'.repeat(128)}a`)).toBe(false);
    expect(accepts('')).toBe(false);
    expect(accepts('\ud800')).toBe(false);
  });
});
