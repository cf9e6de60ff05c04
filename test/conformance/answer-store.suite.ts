import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { AnswerStore } from '../../src/ports/answer-store.js';

export interface AnswerStoreFactory {
  /** Two clients of one fresh store, and a way to let `ms` of the store's time pass. */
  create(): Promise<{ a: AnswerStore; b: AnswerStore; elapse(ms: number): Promise<void> }>;
  teardown?(): Promise<void>;
}

const FP1 = 'fp-one';
const FP2 = 'fp-two';

/** The one suite every AnswerStore implementation must pass. */
export function answerStoreConformance(name: string, factory: AnswerStoreFactory): void {
  describe(`AnswerStore conformance: ${name}`, () => {
    let a: AnswerStore;
    let b: AnswerStore;
    let elapse: (ms: number) => Promise<void>;
    beforeEach(async () => {
      ({ a, b, elapse } = await factory.create());
    });
    afterAll(async () => factory.teardown?.());

    it('gives an id to the first claimant; others see it pending, then answered, with its fingerprint', async () => {
      expect(await a.claim([{ id: 't1', fingerprint: FP1 }], 10_000)).toEqual([{ state: 'claimed' }]);
      expect(await b.claim([{ id: 't1', fingerprint: FP1 }], 10_000)).toEqual([
        { state: 'pending', fingerprint: FP1 },
      ]);
      expect(await b.peek('t1')).toEqual({ state: 'pending', fingerprint: FP1 });
      await a.complete([{ id: 't1', fingerprint: FP1, answer: '{"score":0.5}' }], 60_000);
      const answered = { state: 'answered', fingerprint: FP1, answer: '{"score":0.5}' };
      expect(await b.claim([{ id: 't1', fingerprint: FP2 }], 10_000)).toEqual([answered]);
      expect(await b.peek('t1')).toEqual(answered);
      expect(await a.peek('t2')).toBeUndefined();
    });

    it('claims several ids in one call, in order, whatever each holds', async () => {
      await a.claim([{ id: 'x', fingerprint: FP1 }], 10_000);
      await a.complete([{ id: 'x', fingerprint: FP1, answer: 'answer x' }], 60_000);
      await a.claim([{ id: 'y', fingerprint: FP2 }], 10_000);
      expect(
        await b.claim(
          [
            { id: 'x', fingerprint: FP1 },
            { id: 'new', fingerprint: FP1 },
            { id: 'y', fingerprint: FP1 },
          ],
          10_000,
        ),
      ).toEqual([
        { state: 'answered', fingerprint: FP1, answer: 'answer x' },
        { state: 'claimed' },
        { state: 'pending', fingerprint: FP2 },
      ]);
    });

    it('of concurrent claims on one id, exactly one wins', async () => {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          (i % 2 ? a : b).claim([{ id: 'race', fingerprint: FP1 }], 10_000),
        ),
      );
      expect(results.flat().filter((c) => c.state === 'claimed')).toHaveLength(1);
    });

    it('releases only its own pending claim, and completes only its own', async () => {
      await a.claim([{ id: 'r', fingerprint: FP1 }], 10_000);
      await b.release('r', FP2);
      await b.complete([{ id: 'r', fingerprint: FP2, answer: 'not mine' }], 60_000);
      expect(await a.peek('r')).toEqual({ state: 'pending', fingerprint: FP1 });
      await a.release('r', FP1);
      expect(await a.peek('r')).toBeUndefined();
      expect(await b.claim([{ id: 'r', fingerprint: FP2 }], 10_000)).toEqual([{ state: 'claimed' }]);
      await b.complete([{ id: 'r', fingerprint: FP2, answer: 'answer r' }], 60_000);
      await b.release('r', FP2);
      expect(await a.peek('r')).toEqual({ state: 'answered', fingerprint: FP2, answer: 'answer r' });
    });

    it("completes several claims in one call, each only where the claim is the caller's", async () => {
      await a.claim(
        [
          { id: 'm1', fingerprint: FP1 },
          { id: 'm2', fingerprint: FP1 },
        ],
        10_000,
      );
      await b.claim([{ id: 'm3', fingerprint: FP2 }], 10_000);
      await a.complete(
        [
          { id: 'm1', fingerprint: FP1, answer: 'one' },
          { id: 'm3', fingerprint: FP1, answer: 'not mine' },
          { id: 'm2', fingerprint: FP1, answer: 'two' },
          { id: 'unclaimed', fingerprint: FP1, answer: 'nobody asked' },
        ],
        60_000,
      );
      expect(await b.peek('m1')).toEqual({ state: 'answered', fingerprint: FP1, answer: 'one' });
      expect(await b.peek('m2')).toEqual({ state: 'answered', fingerprint: FP1, answer: 'two' });
      expect(await b.peek('m3')).toEqual({ state: 'pending', fingerprint: FP2 });
      expect(await b.peek('unclaimed')).toBeUndefined();
      // More than a store may send in one call.
      const many = Array.from({ length: 150 }, (_, i) => ({ id: `n${i}`, fingerprint: FP1 }));
      await a.claim(many, 10_000);
      await a.complete(
        many.map((e) => ({ ...e, answer: `answer ${e.id}` })),
        60_000,
      );
      const held = await b.claim(many, 10_000);
      expect(held).toEqual(
        many.map((e) => ({ state: 'answered', fingerprint: FP1, answer: `answer ${e.id}` })),
      );
    });

    it('lets a claim lapse after its pending time, and an answer after its ttl', async () => {
      await a.claim([{ id: 'lapse', fingerprint: FP1 }], 50);
      await a.claim([{ id: 'keep', fingerprint: FP1 }], 50);
      await a.complete([{ id: 'keep', fingerprint: FP1, answer: 'kept' }], 1_500);
      await elapse(120);
      expect(await b.peek('lapse')).toBeUndefined();
      expect(await b.claim([{ id: 'lapse', fingerprint: FP2 }], 10_000)).toEqual([{ state: 'claimed' }]);
      // The first claimant's claim is gone: its late answer does not overwrite the new claim.
      await a.complete([{ id: 'lapse', fingerprint: FP1, answer: 'too late' }], 60_000);
      expect(await b.peek('lapse')).toEqual({ state: 'pending', fingerprint: FP2 });
      expect(await b.peek('keep')).toEqual({ state: 'answered', fingerprint: FP1, answer: 'kept' });
      await elapse(1_500);
      expect(await b.peek('keep')).toBeUndefined();
    });
  });
}
