/**
 * ModelFleet on the in-memory control plane: replicas in one process sharing one plane, fake model versions.
 * The integration test (test/integration/fleet.test.ts) does the same with real processes and Redis.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryControlPlane } from '../../../src/adapters/memory/memory-control-plane.js';
import { ModelLoadError } from '../../../src/domain/models/load-error.js';
import type { ServingRoles } from '../../../src/domain/models/serving-state.js';
import type { ControlPlane } from '../../../src/ports/control-plane.js';
import { FakeSource, fakeClock, fakeReplica } from './fakes.js';

const MODEL = 'fraudscore';
const clock = fakeClock();
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

function replica(name: string, control: ControlPlane, source = new FakeSource(['1', '2', '3'])) {
  const r = fakeReplica(name, control, source, clock);
  stops.push(r.close);
  return { ...r, source };
}

/** A control plane on which, right after the next successful write, another replica writes `then`. */
function racing(plane: MemoryControlPlane) {
  let then: ServingRoles | undefined;
  const wrapped: ControlPlane = {
    kind: plane.kind,
    read: (m) => plane.read(m),
    // No notifications: the replica sees the newer state only, as one that missed the one in between would.
    subscribe: async () => async () => {},
    heartbeat: (m, s, t) => plane.heartbeat(m, s, t),
    replicas: (m) => plane.replicas(m),
    close: () => plane.close(),
    async write(m, expected, roles, by) {
      const written = await plane.write(m, expected, roles, by);
      if (written && then) {
        const next = then;
        then = undefined;
        await plane.write(m, written.generation, next, 'the-other-replica');
      }
      return written;
    },
  };
  return { control: wrapped, raceWith: (roles: ServingRoles) => (then = roles) };
}

describe('ModelFleet', () => {
  it('bootstraps the state from the initial version, and a second replica follows it', async () => {
    const plane = new MemoryControlPlane(clock);
    const a = replica('a', plane);
    await a.fleet.start();
    expect(await plane.read(MODEL)).toMatchObject({ generation: 1, active: '1', updated_by: 'a' });
    const b = replica('b', plane);
    await b.fleet.start();
    expect(b.registry.roles()).toEqual({ active: '1' });
    expect((await plane.read(MODEL))!.generation).toBe(1);
  });

  it('applies a change on every replica: through the notification, or the re-read', async () => {
    const plane = new MemoryControlPlane(clock);
    const [a, b] = [replica('a', plane), replica('b', plane)];
    await a.fleet.start();
    await b.fleet.start();
    await a.fleet.setCanary(MODEL, { version: '2', percent: 25 });
    expect(a.registry.roles()).toEqual({ active: '1', canary: { version: '2', percent: 25 } });
    await b.fleet.converge(MODEL);
    expect(b.registry.roles()).toEqual(a.registry.roles());
  });

  it('refuses a version that cannot load here, and changes nothing anywhere', async () => {
    const plane = new MemoryControlPlane(clock);
    const a = replica('a', plane);
    await a.fleet.start();
    a.source.failing.set('3', new ModelLoadError('golden_mismatch', 'bad golden', MODEL, '3'));
    await expect(a.fleet.activate(MODEL, '3')).rejects.toBeInstanceOf(ModelLoadError);
    expect((await plane.read(MODEL))!.generation).toBe(1);
    expect(a.registry.roles()).toEqual({ active: '1' });
  });

  it('a replica that cannot apply keeps serving, reports the error in its heartbeat, and retries', async () => {
    const plane = new MemoryControlPlane(clock);
    const good = replica('good', plane);
    const bad = replica('bad', plane);
    await good.fleet.start();
    await bad.fleet.start();
    bad.source.failing.set('2', new ModelLoadError('checksum_mismatch', 'corrupt copy', MODEL, '2'));
    await good.fleet.activate(MODEL, '2');
    await bad.fleet.converge(MODEL);
    expect(bad.registry.roles().active).toBe('1');
    await (bad.fleet as unknown as { heartbeat(ttl: number): Promise<void> }).heartbeat(60_000);
    await (good.fleet as unknown as { heartbeat(ttl: number): Promise<void> }).heartbeat(60_000);
    const status = await good.fleet.status(MODEL);
    expect(status.converged).toBe(false);
    const mine = status.replicas.find((r) => r.replica === 'bad')!;
    expect(mine.generation).toBe(1);
    expect(mine.error).toContain('corrupt copy');
    // The files are repaired: the next read applies the state.
    bad.source.failing.delete('2');
    await bad.fleet.converge(MODEL);
    expect(bad.registry.roles().active).toBe('2');
  });

  it('of two changes from the same generation, the second gets a conflict', async () => {
    const plane = new MemoryControlPlane(clock);
    const a = replica('a', plane);
    await a.fleet.start();
    const stale = { ...(await plane.read(MODEL))! };
    await a.fleet.setShadow(MODEL, { version: '2' });
    // A writer that read generation 1 before that change cannot write over it.
    expect(await plane.write(MODEL, stale.generation, { active: '3' }, 'late')).toBeUndefined();
    const r = replica('b', plane);
    await r.fleet.start();
    expect(r.registry.roles()).toEqual({ active: '1', shadow: { version: '2' } });
  });

  it('drops the version it loaded to validate a change when a newer change left it without a role', async () => {
    const plane = new MemoryControlPlane(clock);
    const { control, raceWith } = racing(plane);
    const a = replica('a', control);
    await a.fleet.start();
    raceWith({ active: '1' });
    await a.fleet.setShadow(MODEL, { version: '3' });
    expect(a.registry.roles()).toEqual({ active: '1' });
    expect(a.registry.loadedVersions()).toEqual(['1']);
  });

  it('seeds a lost state again from what it serves', async () => {
    const plane = new MemoryControlPlane(clock);
    const a = replica('a', plane);
    await a.fleet.start();
    await a.fleet.activate(MODEL, '2');
    const empty = new MemoryControlPlane(clock);
    const b = replica('b', empty);
    // b serves 2 (as a restarted Redis would find it), the plane has nothing: b writes what it serves.
    await b.registry.applyRoles(MODEL, { active: '2', previous: '1' });
    await b.fleet.converge(MODEL);
    expect(await empty.read(MODEL)).toMatchObject({ generation: 1, active: '2', previous: '1' });
  });
});
