import { describe, expect, it } from 'vitest';
import { BUCKETS, canaryBucket, fnv1a32 } from '../../../src/domain/models/bucket.js';

describe('fnv1a32', () => {
  it('matches the reference values', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('hashes the UTF-8 bytes of non-ASCII ids', () => {
    let h = 0x811c9dc5;
    for (const b of new TextEncoder().encode('cliént-€')) h = Math.imul(h ^ b, 0x01000193);
    expect(fnv1a32('cliént-€')).toBe(h >>> 0);
  });
});

describe('canaryBucket', () => {
  it('is stable, in range, and spreads sequential ids evenly', () => {
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 20_000; i++) {
      const b = canaryBucket('7', `C${i}`);
      expect(b).toBe(canaryBucket('7', `C${i}`));
      expect(b >= 0 && b < BUCKETS).toBe(true);
      counts[Math.floor(b / 1_000)]++;
    }
    for (const c of counts) expect(Math.abs(c - 2_000)).toBeLessThan(200);
  });

  it('samples different customers for different canary versions', () => {
    const ids = Array.from({ length: 2_000 }, (_, i) => `C${i}`);
    const inV2 = ids.filter((id) => canaryBucket('2', id) < 1_000);
    const alsoInV3 = inV2.filter((id) => canaryBucket('3', id) < 1_000);
    expect(alsoInV3.length / inV2.length).toBeLessThan(0.2);
  });
});
