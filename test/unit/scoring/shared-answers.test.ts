import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AnswerStore } from '../../../src/ports/answer-store.js';
import { SharedAnswers } from '../../../src/usecases/scoring/shared-answers.js';

/** A store that takes every command and never answers: a stalled Redis. */
const stalled: AnswerStore = {
  claim: () => new Promise(() => {}),
  complete: () => new Promise(() => {}),
  release: () => new Promise(() => {}),
  peek: () => new Promise(() => {}),
};

function shared(warnings: unknown[]) {
  return new SharedAnswers({
    store: stalled,
    ttlMs: 60_000,
    pendingTtlMs: 1_000,
    clock: { now: () => Date.now(), monotonic: () => performance.now() },
    logger: { warn: (o: unknown) => void warnings.push(o) },
    pollMs: 2,
  });
}

describe('SharedAnswers with a stalled store', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('gives up claiming at the deadline and scores as if the id were new', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const warnings: unknown[] = [];
    const s = shared(warnings);
    let outcome: unknown;
    void s.claim([{ id: 't1', fingerprint: 'f' }], performance.now() + 50).then((o) => {
      outcome = o;
    });
    await vi.advanceTimersByTimeAsync(49);
    expect(outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome).toEqual([{ kind: 'compute', owned: false, pending: false }]);
    expect(warnings).toHaveLength(1);
  });

  it("stops waiting for another replica's answer at the deadline", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const s = shared([]);
    let done = false;
    const other = s.awaitOther('t1', 'f', performance.now() + 50).then((a) => {
      done = true;
      return a;
    });
    await vi.advanceTimersByTimeAsync(49);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await other).toBeUndefined();
  });
});
