import { describe, expect, it } from 'vitest';
import { BoundedMap } from '../../../src/domain/bounded-map.js';
import { rng } from '../../helpers/generate.js';

describe('BoundedMap', () => {
  it('drops the entry set longest ago; setting a present key makes it the newest', () => {
    const m = new BoundedMap<string, number>(3);
    m.set('a', 1);
    m.set('b', 2);
    m.set('c', 3);
    m.set('a', 10);
    m.set('d', 4);
    expect([...m.keys()]).toEqual(['c', 'a', 'd']);
    expect(m.get('a')).toBe(10);
    expect(m.has('b')).toBe(false);
    expect(m.size).toBe(3);
  });

  it('may delete the entry it is iterating over, as a sweep does', () => {
    const m = new BoundedMap<number, number>(10);
    for (let i = 0; i < 10; i++) m.set(i, i);
    for (const [key, value] of m.entries()) if (value % 2 === 0) m.delete(key);
    expect([...m.keys()]).toEqual([1, 3, 5, 7, 9]);
    m.set(11, 11);
    m.delete(9);
    m.set(1, 1);
    expect([...m.keys()]).toEqual([3, 5, 7, 11, 1]);
  });

  it('keeps nothing at capacity 0', () => {
    const m = new BoundedMap<string, number>(0);
    m.set('a', 1);
    expect(m.size).toBe(0);
  });

  it('agrees with a plain Map evicting its first key, over random sets, deletes and re-sets', () => {
    const random = rng(17);
    const m = new BoundedMap<number, number>(50);
    const reference = new Map<number, number>();
    for (let i = 0; i < 20_000; i++) {
      const key = Math.floor(random() * 200);
      if (random() < 0.2) {
        expect(m.delete(key)).toBe(reference.delete(key));
        continue;
      }
      m.set(key, i);
      reference.delete(key);
      reference.set(key, i);
      if (reference.size > 50) reference.delete(reference.keys().next().value!);
      if (i % 997 === 0) expect([...m.entries()]).toEqual([...reference.entries()]);
    }
    expect([...m.entries()]).toEqual([...reference.entries()]);
  });
});
