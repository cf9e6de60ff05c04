import { describe, expect, it, vi } from 'vitest';
import { ModelLoadError } from '../../../src/domain/models/load-error.js';
import { ModelRegistry, type RegistryEvent } from '../../../src/usecases/models/registry.js';
import { FakeSource, fakeClock, silentLogger } from './fakes.js';

const row = Float32Array.from([1, 0, 2]);
const settle = () => new Promise((r) => setTimeout(r, 5));

function setup(options: { drainTimeoutMs?: number; versions?: string[] } = {}) {
  const source = new FakeSource(options.versions);
  const events: RegistryEvent[] = [];
  const registry = new ModelRegistry({
    source,
    logger: silentLogger,
    clock: fakeClock(),
    defaultModel: 'fraudscore',
    batching: { enabled: true, maxRows: 32, maxWaitMs: 1 },
    psiWindow: 100,
    drainTimeoutMs: options.drainTimeoutMs,
    onEvent: (e) => events.push(e),
  });
  const releases = (version: string) => source.sessions.get(version)!.map((s) => s.releases);
  const servedBy = (customer: string) => {
    const r = registry.route(customer);
    r.primary.release();
    r.shadow?.release();
    return r.primary.version.version;
  };
  return { source, registry, events, releases, servedBy };
}

describe('ModelRegistry lifecycle', () => {
  it('serves nothing until a version is active', async () => {
    const { registry } = setup();
    expect(() => registry.route('c1')).toThrow(expect.objectContaining({ code: 'no_active' }));
    await registry.activate('fraudscore', '1');
    const r = registry.route('c1');
    expect(r.arm).toBe('active');
    expect(r.primary.version.id).toBe('fraudscore@1');
    expect((await r.primary.version.score(row)).score).toBeCloseTo(0.11, 6);
    r.primary.release();
  });

  it('activates, keeps the replaced version for rollback, and rolls back', async () => {
    const { registry, releases, servedBy, events } = setup();
    await registry.activate('fraudscore', '1');
    await registry.activate('fraudscore', '2');
    expect(servedBy('c1')).toBe('2');
    expect(releases('1')).toEqual([0, 0]);
    const [model] = await registry.list();
    expect(model).toMatchObject({ name: 'fraudscore', active: '2', previous: '1' });
    expect(model!.versions.map((v) => [v.version, v.state, v.rollbackTarget])).toEqual([
      ['1', 'loaded', true],
      ['2', 'active', false],
      ['3', 'available', false],
    ]);
    expect(model!.versions[2]!.evaluation).toEqual({ auc_roc: 0.9, version: '3' });

    await registry.rollback('fraudscore');
    expect(servedBy('c1')).toBe('1');
    await settle();
    expect(releases('2')).toEqual([1, 1]);
    await expect(registry.rollback('fraudscore')).rejects.toMatchObject({ code: 'no_previous' });
    expect(events.map((e) => e.type)).toEqual([
      'load',
      'activate',
      'load',
      'activate',
      'rollback',
      'released',
    ]);
    expect(events.find((e) => e.type === 'rollback')).toMatchObject({ from: '2', to: '1' });
  });

  it('keeps serving the current version when a load fails, and lists the reason', async () => {
    const { registry, source, servedBy } = setup();
    await registry.activate('fraudscore', '1');
    source.failing.set(
      '2',
      new ModelLoadError(
        'checksum_mismatch',
        'checksum mismatch for a.onnx: expected 00…, got ff…',
        'fraudscore',
        '2',
      ),
    );
    await expect(registry.activate('fraudscore', '2')).rejects.toThrow(/checksum mismatch for a.onnx/);
    expect(servedBy('c1')).toBe('1');
    const [model] = await registry.list();
    expect(model!.versions[1]).toMatchObject({
      version: '2',
      state: 'failed',
      failure: { code: 'checksum_mismatch', reason: expect.stringContaining('checksum mismatch') },
    });
    source.failing.delete('2');
    await registry.activate('fraudscore', '2');
    expect((await registry.list())[0]!.versions[1]!.failure).toBeUndefined();
  });

  it('serialises concurrent lifecycle operations', async () => {
    const { registry, source } = setup();
    await Promise.all([
      registry.activate('fraudscore', '1'),
      registry.activate('fraudscore', '2'),
      registry.load('fraudscore', '2'),
    ]);
    expect(registry.active()?.version).toBe('2');
    expect((await registry.list())[0]!.previous).toBe('1');
    expect(source.loads).toBe(2);
  });

  it('keeps an explicitly loaded version until it is unloaded', async () => {
    const { registry, releases } = setup();
    await registry.activate('fraudscore', '1');
    await registry.load('fraudscore', '3');
    await registry.activate('fraudscore', '2');
    expect(registry.get('fraudscore', '3')?.state).toBe('serving');
    await expect(registry.unload('fraudscore', '2')).rejects.toMatchObject({ code: 'conflict' });
    await registry.unload('fraudscore', '3');
    expect(releases('3')).toEqual([1, 1]);
    expect(registry.get('fraudscore', '3')).toBeUndefined();
  });
});

describe('ModelRegistry canary and shadow', () => {
  const customers = Array.from({ length: 5_000 }, (_, i) => `C${String(i).padStart(6, '0')}`);

  it('sends a sticky share of customers to the canary, within ±3 pp', async () => {
    const { registry, servedBy } = setup();
    await registry.activate('fraudscore', '1');
    await registry.setCanary('fraudscore', { version: '2', percent: 20 });
    const first = customers.map(servedBy);
    const share = first.filter((v) => v === '2').length / customers.length;
    expect(Math.abs(share - 0.2)).toBeLessThan(0.03);
    expect(customers.map(servedBy)).toEqual(first);
    expect(registry.route(customers[first.indexOf('2')]!).arm).toBe('canary');

    await registry.setCanary('fraudscore', { version: '2', percent: 50 });
    const ramped = customers.map(servedBy);
    expect(Math.abs(ramped.filter((v) => v === '2').length / customers.length - 0.5)).toBeLessThan(0.03);
    first.forEach((v, i) => {
      if (v === '2') expect(ramped[i]).toBe('2');
    });

    await registry.clearCanary('fraudscore');
    expect(new Set(customers.map(servedBy))).toEqual(new Set(['1']));
  });

  it('refuses canaries that make no sense and leaves routing alone', async () => {
    const { registry, source, servedBy } = setup();
    await expect(registry.setCanary('fraudscore', { version: '2', percent: 10 })).rejects.toMatchObject({
      code: 'no_active',
    });
    await registry.activate('fraudscore', '1');
    await expect(registry.setCanary('fraudscore', { version: '1', percent: 10 })).rejects.toMatchObject({
      code: 'conflict',
    });
    await expect(registry.setCanary('fraudscore', { version: '2', percent: 0 })).rejects.toMatchObject({
      code: 'invalid_argument',
    });
    await registry.setCanary('fraudscore', { version: '2', percent: 100 });
    source.failing.set('3', new ModelLoadError('golden_mismatch', 'golden example 0: …', 'fraudscore', '3'));
    await expect(registry.setCanary('fraudscore', { version: '3', percent: 100 })).rejects.toThrow(/golden/);
    expect(servedBy('anyone')).toBe('2');
  });

  it('promoting the canary makes it active and clears the canary', async () => {
    const { registry } = setup();
    await registry.activate('fraudscore', '1');
    await registry.setCanary('fraudscore', { version: '2', percent: 10 });
    await registry.activate('fraudscore', '2');
    const [m] = await registry.list();
    expect(m).toMatchObject({ active: '2', previous: '1', canary: undefined });
  });

  it('shadows every request with a second version and releases it when cleared', async () => {
    const { registry, releases } = setup();
    await registry.activate('fraudscore', '1');
    await registry.setShadow('fraudscore', { version: '3' });
    const r = registry.route('c1');
    expect(r.shadow?.version.version).toBe('3');
    expect((await r.shadow!.version.score(row)).score).toBeCloseTo(0.13, 6);
    await registry.clearShadow('fraudscore');
    expect(registry.route('c2').shadow).toBeUndefined();
    await settle();
    expect(releases('3')).toEqual([0, 0]);
    r.shadow!.release();
    await settle();
    expect(releases('3')).toEqual([1, 1]);
    await expect(registry.setShadow('fraudscore', { version: '1' })).rejects.toMatchObject({
      code: 'conflict',
    });
  });
});

describe('ModelRegistry draining', () => {
  it('lets in-flight requests finish on their version and releases it only after they do', async () => {
    const { registry, source, releases, events } = setup();
    await registry.activate('fraudscore', '1');
    const lease = registry.route('c1');
    const v1 = lease.primary.version;
    const gate = source.sessions.get('1')![0]!;
    gate.hold();
    const inFlight = v1.score(row);
    await registry.activate('fraudscore', '2');
    await registry.activate('fraudscore', '3');
    await settle();
    expect(v1.state).toBe('draining');
    expect(v1.inFlight).toBe(1);
    expect(releases('1')).toEqual([0, 0]);
    gate.open();
    expect((await inFlight).score).toBeCloseTo(0.11, 6);
    lease.primary.release();
    lease.primary.release();
    await settle();
    expect(releases('1')).toEqual([1, 1]);
    expect(v1.state).toBe('released');
    expect(events.filter((e) => e.type === 'released')).toMatchObject([{ version: '1', forced: false }]);
    await expect(v1.score(row)).rejects.toThrow(/released/);
  });

  it('releases a version with a leaked lease after the drain timeout', async () => {
    // Fake timers: the drain timer fires when the test says so, however slow the machine.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { registry, releases, events } = setup({ drainTimeoutMs: 20_000 });
      await registry.activate('fraudscore', '1');
      registry.route('c1');
      await registry.activate('fraudscore', '2');
      await registry.activate('fraudscore', '3');
      await vi.advanceTimersByTimeAsync(19_999);
      expect(releases('1')).toEqual([0, 0]);
      await vi.advanceTimersByTimeAsync(1);
      expect(releases('1')).toEqual([1, 1]);
      expect(events.at(-1)).toMatchObject({ type: 'released', version: '1', forced: true });
    } finally {
      vi.useRealTimers();
    }
  });

  it('close releases everything', async () => {
    const { registry, releases } = setup();
    await registry.activate('fraudscore', '1');
    await registry.activate('fraudscore', '2');
    await registry.setShadow('fraudscore', { version: '3' });
    await registry.close();
    expect([releases('1'), releases('2'), releases('3')]).toEqual([
      [1, 1],
      [1, 1],
      [1, 1],
    ]);
  });
});
