import { describe, expect, it, vi } from 'vitest';
import { type BatcherOptions, MicroBatcher } from '../../../src/usecases/models/batcher.js';
import { sleep } from '../../helpers/wait.js';
import { FakeSession, fakeClock } from './fakes.js';

const WIDTH = 3;
const row = (x: number) => Float32Array.from([x, 0, 0]);
const tick = () => new Promise((r) => setImmediate(r));

function setup(options: Partial<BatcherOptions> = {}) {
  const sessions = [new FakeSession(0), new FakeSession(0.5)];
  const batches: number[] = [];
  const batcher = new MicroBatcher(
    {
      sessions,
      memberNames: ['a', 'b'],
      width: WIDTH,
      combine: (p) => (p[0]! + p[1]!) / 2,
      clock: fakeClock(),
      onBatch: (b) => batches.push(b.rows),
    },
    { enabled: true, maxRows: 32, maxWaitMs: 1_000, ...options },
  );
  return { batcher, sessions, batches, a: sessions[0]!, b: sessions[1]! };
}

describe('MicroBatcher', () => {
  it('coalesces concurrent calls into one run per member and returns each row its own score', async () => {
    const { batcher, a, b, batches } = setup();
    const results = await Promise.all([1, 2, 3, 4, 5].map((x) => batcher.score(row(x))));
    expect(a.runs).toEqual([5]);
    expect(b.runs).toEqual([5]);
    expect(batches).toEqual([5]);
    results.forEach((r, i) => {
      const pa = Math.fround(0.1 * (i + 1));
      const pb = Math.fround(Math.min(1, 0.5 + 0.1 * (i + 1)));
      expect(r.members).toEqual([pa, pb]);
      expect(r.score).toBeCloseTo((pa + pb) / 2, 12);
    });
  });

  it('runs a lone call on the next turn of the event loop, without waiting for maxWaitMs', async () => {
    // With setTimeout faked and never advanced, a batcher that waited for maxWaitMs would never run.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { batcher, a } = setup({ maxWaitMs: 2_000 });
      const result = batcher.score(row(1));
      for (let i = 0; i < 5; i++) await tick();
      expect(a.runs).toEqual([1]);
      expect((await result).members).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('holds arrivals while a run is in progress and sends them together when it finishes', async () => {
    const { batcher, a } = setup();
    a.hold();
    const first = batcher.score(row(1));
    await tick();
    const later = [2, 3, 4, 5, 6].map((x) => batcher.score(row(x)));
    await tick();
    await tick();
    expect(a.runs).toEqual([1]);
    expect(batcher.queued).toBe(5);
    a.open();
    await Promise.all([first, ...later]);
    expect(a.runs).toEqual([1, 5]);
  });

  it('stops waiting after maxWaitMs', async () => {
    const { batcher, a } = setup({ maxWaitMs: 10 });
    a.hold();
    const first = batcher.score(row(1));
    await tick();
    const later = Promise.all([2, 3, 4].map((x) => batcher.score(row(x))));
    await sleep(40);
    expect(a.runs).toEqual([1, 3]);
    a.open();
    await Promise.all([first, later]);
  });

  it('does not wait once maxRows are queued', async () => {
    const { batcher, a } = setup({ maxRows: 4 });
    a.hold();
    const first = batcher.score(row(1));
    await tick();
    const later = Promise.all([1, 2, 3, 4].map((x) => batcher.score(row(x))));
    await tick();
    await tick();
    expect(a.runs).toEqual([1, 4]);
    a.open();
    await Promise.all([first, later]);
  });

  it('caps every run at maxRows', async () => {
    const { batcher, a } = setup({ maxRows: 32 });
    await Promise.all(Array.from({ length: 70 }, (_, i) => batcher.score(row(i / 70))));
    expect(a.runs).toEqual([32, 32, 6]);
    const many = await batcher.scoreMany(Array.from({ length: 40 }, (_, i) => row(i / 40)));
    expect(many).toHaveLength(40);
    expect(many[39]!.members[0]).toBeCloseTo(0.1 * (39 / 40), 6);
    expect(a.runs.slice(3)).toEqual([32, 8]);
  });

  it('starts at most one run per turn of the event loop, so a turn stays bounded when runs are synchronous', async () => {
    for (const enabled of [true, false]) {
      const { batcher, a } = setup({ enabled, maxRows: 4 });
      const all = batcher.scoreMany(Array.from({ length: 10 }, (_, i) => row(i / 10)));
      const seen: number[][] = [];
      for (let i = 0; i < 3; i++) {
        seen.push([...a.runs]);
        await tick();
      }
      expect(seen).toEqual(enabled ? [[], [4], [4, 4]] : [[4], [4, 4], [4, 4, 2]]);
      expect(await all).toHaveLength(10);
      expect(a.runs).toEqual([4, 4, 2]);
    }
  });

  it('runs every call on its own when disabled', async () => {
    const { batcher, a } = setup({ enabled: false, maxRows: 32 });
    await Promise.all([1, 2, 3].map((x) => batcher.score(row(x))));
    expect(a.runs).toEqual([1, 1, 1]);
    await batcher.scoreMany(Array.from({ length: 40 }, () => row(1)));
    expect(a.runs.slice(3)).toEqual([32, 8]);
  });

  it('fails only the calls in a failed run', async () => {
    const { batcher, b } = setup();
    b.fail = new Error('boom');
    const failed = Promise.allSettled([batcher.score(row(1)), batcher.scoreMany([row(2), row(3)])]);
    expect((await failed).map((r) => r.status)).toEqual(['rejected', 'rejected']);
    b.fail = undefined;
    await expect(batcher.score(row(1))).resolves.toMatchObject({
      members: [expect.any(Number), expect.any(Number)],
    });
  });

  it('refuses a row of the wrong width', async () => {
    const { batcher } = setup();
    await expect(batcher.score(Float32Array.from([1, 2]))).rejects.toThrow(
      /holds 2 values, the model takes 3/,
    );
    await expect(batcher.scoreMany([])).resolves.toEqual([]);
  });
});
