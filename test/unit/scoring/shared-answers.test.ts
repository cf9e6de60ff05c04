import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AnswerStore } from '../../../src/ports/answer-store.js';
import { Deadline } from '../../../src/usecases/scoring/deadline.js';
import { SharedAnswers } from '../../../src/usecases/scoring/shared-answers.js';

/** A store that takes every command and never answers: a stalled Redis. */
const stalled: AnswerStore = {
  claim: () => new Promise(() => {}),
  complete: () => new Promise(() => {}),
  release: () => new Promise(() => {}),
  peek: () => new Promise(() => {}),
};

function shared(warnings: unknown[], store: AnswerStore = stalled, maxBacklog?: number) {
  return new SharedAnswers({
    store,
    ttlMs: 60_000,
    pendingTtlMs: 1_000,
    clock: { now: () => Date.now(), monotonic: () => performance.now() },
    logger: { warn: (o: unknown) => void warnings.push(o) },
    pollMs: 2,
    ...(maxBacklog === undefined ? {} : { maxBacklog }),
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
    const deadline = new Deadline(performance.now() + 50, { monotonic: () => performance.now() });
    void s.claim([{ id: 't1', fingerprint: 'f' }], deadline).then((o) => {
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

describe('SharedAnswers keeping answers', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A store whose `complete` calls wait until the test lets them through: what is in flight is visible. */
  function gated() {
    const waiting: { ids: string[]; go(): void }[] = [];
    const kept: string[] = [];
    const released: string[] = [];
    const store: AnswerStore = {
      ...stalled,
      release: async (id) => void released.push(id),
      complete: (entries) =>
        new Promise<void>((resolve) => {
          const ids = entries.map((e) => e.id);
          waiting.push({
            ids,
            go() {
              kept.push(...ids);
              resolve();
            },
          });
        }),
    };
    return { store, waiting, kept, released };
  }
  const answersIn = (calls: readonly { ids: string[] }[]) => calls.reduce((n, c) => n + c.ids.length, 0);
  const nextTurn = () => new Promise<void>((r) => setImmediate(r));
  const answer = { result: {} as never, features: {} };

  it("keeps a batch's answers a chunk per round trip, so a read waits behind one chunk at most", async () => {
    const { store, waiting, kept } = gated();
    const s = shared([], store);
    for (let i = 0; i < 1_000; i++) s.remember(`t${i}`, 'f', answer);
    expect(waiting).toHaveLength(0); // off the response path: nothing on the turn that answered
    let rounds = 0;
    while (kept.length < 1_000) {
      await nextTurn();
      const inFlight = waiting.splice(0);
      expect(answersIn(inFlight)).toBeLessThanOrEqual(64);
      if (inFlight.length > 0) rounds++;
      for (const call of inFlight) call.go();
    }
    expect(rounds).toBe(Math.ceil(1_000 / 64));
    expect(kept).toEqual(Array.from({ length: 1_000 }, (_, i) => `t${i}`));
  });

  it('does not keep more than its backlog while the store is away: gives those ids back, and says so once', async () => {
    const { store, waiting, released } = gated();
    const warnings: unknown[] = [];
    const s = shared(warnings, store, 100);
    for (let i = 0; i < 150; i++) s.remember(`t${i}`, 'f', answer);
    expect(warnings).toHaveLength(1);
    expect(released).toEqual(Array.from({ length: 50 }, (_, i) => `t${100 + i}`));
    await nextTurn();
    expect(answersIn(waiting)).toBe(64);
  });

  it('flushes: resolves once every answer handed over was kept', async () => {
    const { store, waiting, kept } = gated();
    const s = shared([], store);
    for (let i = 0; i < 100; i++) s.remember(`t${i}`, 'f', answer);
    let flushed = false;
    const flushing = s.flush().then(() => {
      flushed = true;
    });
    while (kept.length < 100) {
      await nextTurn();
      expect(flushed).toBe(false);
      for (const call of waiting.splice(0)) call.go();
    }
    await flushing;
    expect(flushed).toBe(true);
  });

  it('goes on keeping after a chunk the store does not answer within a second', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { store, waiting, kept } = gated();
    const warnings: unknown[] = [];
    const s = shared(warnings, store);
    for (let i = 0; i < 65; i++) s.remember(`t${i}`, 'f', answer);
    await nextTurn();
    expect(answersIn(waiting)).toBe(64);
    waiting.splice(0); // the first chunk never answers
    await vi.advanceTimersByTimeAsync(1_000);
    await nextTurn();
    expect(answersIn(waiting)).toBe(1);
    waiting.splice(0)[0]!.go();
    await s.flush();
    expect(kept).toEqual(['t64']);
    expect(warnings).toHaveLength(1);
  });
});
