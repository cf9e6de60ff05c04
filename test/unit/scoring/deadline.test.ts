import { afterEach, describe, expect, it, vi } from 'vitest';
import { Deadline, DeadlineExceeded } from '../../../src/usecases/scoring/deadline.js';

const never = () => new Promise<never>(() => {});

describe("a request's Deadline", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('races every stage against one timer, set on the first race', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const deadline = new Deadline(performance.now() + 50, { monotonic: () => performance.now() });
    expect(vi.getTimerCount()).toBe(0);
    await expect(deadline.race(Promise.resolve('read'))).resolves.toBe('read');
    const slow = deadline.race(never());
    slow.catch(() => {});
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(49);
    await expect(Promise.race([slow, 'pending'])).resolves.toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    await expect(slow).rejects.toBeInstanceOf(DeadlineExceeded);
    expect(deadline.left()).toBe(0);
  });

  it('rejects a race once the deadline has passed, without a timer', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const deadline = new Deadline(performance.now() - 1, { monotonic: () => performance.now() });
    await expect(deadline.race(Promise.resolve(1))).rejects.toThrow('deadline already passed');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('clears its timer at end(), and a timer that fires between stages is no unhandled rejection', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const clock = { monotonic: () => performance.now() };
    const ended = new Deadline(performance.now() + 50, clock);
    await ended.race(Promise.resolve(1));
    ended.end();
    expect(vi.getTimerCount()).toBe(0);
    const idle = new Deadline(performance.now() + 50, clock);
    await idle.race(Promise.resolve(1));
    await vi.advanceTimersByTimeAsync(50);
    await expect(idle.race(Promise.resolve(2))).rejects.toBeInstanceOf(DeadlineExceeded);
  });
});
