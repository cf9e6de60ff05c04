import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { ReplicaStatus } from '../../src/domain/models/serving-state.js';
import type { ControlPlane } from '../../src/ports/control-plane.js';
import { waitFor } from '../helpers/wait.js';

export interface ControlPlaneFactory {
  /** Fresh control planes that share one store (e.g. two clients on a new key prefix), on a clock the test moves. */
  create(clock: { now(): number; monotonic(): number }): Promise<{ a: ControlPlane; b: ControlPlane }>;
  teardown?(): Promise<void>;
}

const status = (replica: string, generation: number, over: Partial<ReplicaStatus> = {}): ReplicaStatus => ({
  replica,
  generation,
  active: '1',
  loaded: ['1'],
  at: '2026-01-01T00:00:00.000Z',
  ...over,
});

/** The one suite every ControlPlane implementation must pass. */
export function controlPlaneConformance(name: string, factory: ControlPlaneFactory): void {
  describe(`ControlPlane conformance: ${name}`, () => {
    let t = Date.parse('2026-01-01T00:00:00Z');
    const clock = { now: () => t, monotonic: () => t };
    let a: ControlPlane;
    let b: ControlPlane;
    beforeEach(async () => {
      ({ a, b } = await factory.create(clock));
      return async () => {
        await a.close();
        await b.close();
      };
    });
    afterAll(async () => factory.teardown?.());

    it('has no state until one is written; a write is seen by every client with generation 1', async () => {
      expect(await a.read('m')).toBeUndefined();
      const written = await a.write('m', 0, { active: '1' }, 'replica-a');
      expect(written).toMatchObject({ generation: 1, active: '1', updated_by: 'replica-a' });
      expect(await b.read('m')).toEqual(written);
      expect(await b.read('other')).toBeUndefined();
    });

    it('compares and sets on the generation: of two writers from the same generation one wins', async () => {
      await a.write('m', 0, { active: '1' }, 'a');
      const [x, y] = await Promise.all([
        a.write('m', 1, { active: '2', previous: '1' }, 'a'),
        b.write('m', 1, { active: '1', canary: { version: '2', percent: 30 } }, 'b'),
      ]);
      expect([x, y].filter(Boolean)).toHaveLength(1);
      const winner = (x ?? y)!;
      expect(winner.generation).toBe(2);
      expect(await a.read('m')).toEqual(winner);
      // A stale writer never overwrites a newer state.
      expect(await b.write('m', 1, { active: '3' }, 'b')).toBeUndefined();
      expect(await b.write('m', 5, { active: '3' }, 'b')).toBeUndefined();
      expect((await a.read('m'))!.generation).toBe(2);
    });

    it('keeps every role: active, rollback target, canary, shadow; a change may clear them', async () => {
      const roles = {
        active: '2',
        previous: '1',
        canary: { version: '3', percent: 12.5 },
        shadow: { version: '4' },
      };
      await a.write('m', 0, roles, 'a');
      expect(await b.read('m')).toMatchObject(roles);
      const cleared = await b.write('m', 1, { active: '2', previous: '1' }, 'b');
      expect(cleared!.canary).toBeUndefined();
      expect((await a.read('m'))!.shadow).toBeUndefined();
    });

    it('notifies subscribers of every client of a write, with the model name', async () => {
      const seen: string[] = [];
      const off = await b.subscribe((m) => seen.push(m));
      await a.write('m1', 0, { active: '1' }, 'a');
      await a.write('m2', 0, { active: '1' }, 'a');
      await waitFor(() => seen.includes('m1') && seen.includes('m2'), 5_000, 'notifications');
      await off();
      const after = seen.length;
      await a.write('m1', 1, { active: '2' }, 'a');
      await new Promise((r) => setTimeout(r, 100));
      expect(seen.length).toBe(after);
    });

    it('lists live replicas by id and forgets one whose heartbeat expired', async () => {
      await a.heartbeat('m', status('r2', 1), 10_000);
      await b.heartbeat('m', status('r1', 0, { error: 'cannot load 2' }), 30_000);
      expect((await a.replicas('m')).map((r) => r.replica)).toEqual(['r1', 'r2']);
      expect((await b.replicas('m'))[0]).toEqual(status('r1', 0, { error: 'cannot load 2' }));
      t += 10_001;
      expect((await b.replicas('m')).map((r) => r.replica)).toEqual(['r1']);
      await a.heartbeat('m', status('r2', 2), 10_000);
      expect((await b.replicas('m')).map((r) => [r.replica, r.generation])).toEqual([
        ['r1', 0],
        ['r2', 2],
      ]);
      expect(await a.replicas('other')).toEqual([]);
    });
  });
}
