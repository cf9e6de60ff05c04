import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/ports/clock.js';
import type { WorkerProgressStore } from '../../src/ports/worker-progress.js';

export interface ProgressStoreFactory {
  /** A fresh, empty store (e.g. a new key prefix) whose records live `ttlMs` by `clock`. */
  create(clock: Clock, ttlMs: number): Promise<WorkerProgressStore>;
}

/** A wall clock the test moves by hand. */
export function manualClock(start = Date.parse('2026-01-01T00:00:00Z')) {
  let now = start;
  const clock: Clock = { now: () => now, monotonic: () => performance.now() };
  return {
    clock,
    set: (t: number) => {
      now = t;
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** What every WorkerProgressStore must do (memory: unit suite; Redis and Redis Cluster: integration). */
export function progressStoreConformance(name: string, factory: ProgressStoreFactory): void {
  describe(`WorkerProgressStore conformance: ${name}`, () => {
    const TTL = 60_000;

    it('returns what each worker recorded last, one record per worker', async () => {
      const m = manualClock();
      const store = await factory.create(m.clock, TTL);
      expect(await store.readAll()).toEqual([]);
      const t = m.clock.now();
      await store.record({ member: 'w-1', at: t, progressAt: t - 5_000, lag: 12 });
      await store.record({ member: 'w 2/host', at: t, progressAt: t, lag: 0 });
      await store.record({ member: 'w-1', at: t + 1_000, progressAt: t - 4_000, lag: 3 });
      m.advance(1_000);
      const all = (await store.readAll()).sort((a, b) => a.member.localeCompare(b.member));
      expect(all).toEqual([
        { member: 'w 2/host', at: t, progressAt: t, lag: 0 },
        { member: 'w-1', at: t + 1_000, progressAt: t - 4_000, lag: 3 },
      ]);
    });

    it('forgets a worker that removes its record', async () => {
      const m = manualClock();
      const store = await factory.create(m.clock, TTL);
      const t = m.clock.now();
      await store.record({ member: 'a', at: t, progressAt: t, lag: 0 });
      await store.record({ member: 'b', at: t, progressAt: t, lag: 1 });
      await store.remove('a');
      await store.remove('never-there');
      expect((await store.readAll()).map((r) => r.member)).toEqual(['b']);
    });

    it('forgets a worker that has not written for the TTL, keeps the others', async () => {
      const m = manualClock();
      const store = await factory.create(m.clock, TTL);
      const t = m.clock.now();
      await store.record({ member: 'dead', at: t, progressAt: t - 1_000, lag: 50 });
      m.advance(TTL / 2);
      await store.record({ member: 'alive', at: m.clock.now(), progressAt: t, lag: 7 });
      m.advance(TTL / 2 + 1);
      expect((await store.readAll()).map((r) => r.member)).toEqual(['alive']);
      await store.record({ member: 'alive', at: m.clock.now(), progressAt: m.clock.now(), lag: 0 });
      expect((await store.readAll()).map((r) => r.member)).toEqual(['alive']);
    });
  });
}
