/**
 * The promotion policy (issue 19, item 4) on the in-memory control plane with fake model versions: the live
 * comparison is scripted (the performance report is the use case's input); the roles, the record in the serving
 * state and the audit events are what is checked. The end-to-end run through Kafka and the real decision log is
 * test/integration/promotion.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryControlPlane } from '../../../src/adapters/memory/memory-control-plane.js';
import type { Card } from '../../../src/domain/models/card.js';
import { ModelLoadError } from '../../../src/domain/models/load-error.js';
import type { Manifest } from '../../../src/domain/models/manifest.js';
import { nextPromotionStep, type PromotionPolicy } from '../../../src/domain/models/promotion.js';
import type { Comparison, Verdict } from '../../../src/domain/performance/compare.js';
import type { ControlPlane } from '../../../src/ports/control-plane.js';
import { PromotionController } from '../../../src/usecases/models/promotion.js';
import type { PerformanceReport } from '../../../src/usecases/performance.js';
import { FakeSource, fakeClock, fakeManifest, fakeReplica, silentLogger } from './fakes.js';

const MODEL = 'fraudscore';
const DAY = 86_400_000;
const POLICY: PromotionPolicy = {
  canarySteps: [10, 50],
  minFrauds: 20,
  maxAucLoss: 0.01,
  maxScorePsi: 0.2,
  maxErrorRate: 0.01,
  minErrorRows: 100,
};

function card(verdict: 'eligible' | 'rejected'): Card {
  return {
    schema_version: 1,
    created_at: '2026-11-30T00:00:00Z',
    trigger: { kind: 'test' },
    gate: { verdict, rules: [], reasons: verdict === 'rejected' ? ['average_precision below'] : [] },
  };
}

/** Versions 1..4 with the given gate verdicts; a version without one has no card (shipped before cards). */
class CardedSource extends FakeSource {
  constructor(private readonly verdicts: Record<string, 'eligible' | 'rejected'>) {
    super(['1', '2', '3', '4']);
  }
  override async readManifest(name: string, version: string): Promise<Manifest> {
    const m = await super.readManifest(name, version);
    const v = this.verdicts[version];
    return v ? fakeManifest(version, { card: card(v) }) : m;
  }
}

/** A scripted live comparison: the champion is the active version, the challenger whatever the test says. */
class ScriptedPerformance {
  verdict: Verdict = 'insufficient_data';
  ci95: [number, number] | undefined;
  frauds = new Map<string, number>();
  challenger = '';
  champion = '1';
  readonly since: (number | undefined)[] = [];
  async report(model: string, since?: number): Promise<PerformanceReport> {
    this.since.push(since);
    const worse = this.verdict === 'worse';
    const comparison: Comparison = {
      champion: this.champion,
      challenger: this.challenger,
      paired: true,
      n: 1000,
      frauds: this.frauds.get(this.challenger) ?? 0,
      auc_difference: worse ? -0.08 : 0.001,
      ci95: this.ci95 ?? (worse ? [-0.12, -0.04] : [-0.005, 0.012]),
      p_value: worse ? 0.001 : 0.6,
      method: 'delong_paired',
      verdict: this.verdict,
    };
    return {
      model,
      unscored_labels: 0,
      versions: [...this.frauds].map(([version, frauds]) => ({ version, frauds }) as never),
      ...(this.challenger ? { comparison } : {}),
    };
  }
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

async function setup(
  verdicts: Record<string, 'eligible' | 'rejected'> = { '2': 'eligible', '3': 'rejected' },
  plane: ControlPlane = new MemoryControlPlane(fakeClock()),
  name = 'a',
) {
  const clock = fakeClock();
  const source = new CardedSource(verdicts);
  const { registry, fleet, close } = fakeReplica(name, plane, source, clock);
  stops.push(close);
  await fleet.start();
  const performance = new ScriptedPerformance();
  const audit: Record<string, unknown>[] = [];
  const transitions: string[] = [];
  const controller = new PromotionController({
    fleet,
    control: plane,
    registry,
    performance,
    models: [MODEL],
    policy: POLICY,
    minPsiObservations: 50,
    replica: name,
    clock,
    logger: {
      ...silentLogger,
      debug() {},
      info: (o: object) => void audit.push(o as Record<string, unknown>),
    },
    onTransition: (_, t) => transitions.push(t.to),
  });
  const read = async () => (await plane.read(MODEL))!;
  return { plane, read, clock, registry, fleet, performance, controller, audit, transitions, source };
}

describe('PromotionController', () => {
  it('moves the newest eligible version shadow → canary 10% → 50% → active as labelled frauds accumulate', async () => {
    const { read, clock, registry, performance: p, controller, audit } = await setup();
    // 4 has no card, so it is never picked; 3 was rejected; 2 is the newest eligible.
    expect(await controller.tick(MODEL)).toMatchObject({ kind: 'transition', transition: { to: 'shadow' } });
    expect(registry.roles()).toEqual({ active: '1', shadow: { version: '2' } });
    // The stage counts decisions from the next UTC day: the day it began may hold other stages' decisions.
    const nextDay = (Math.floor(clock.now() / DAY) + 1) * DAY;
    expect((await read()).promotion?.candidate).toMatchObject({
      version: '2',
      stage: 'shadow',
      champion: '1',
      evidence_from: new Date(nextDay).toISOString(),
    });
    p.challenger = '2';
    p.frauds.set('2', 5);
    p.verdict = 'no_significant_difference';
    expect(await controller.tick(MODEL)).toEqual({
      kind: 'hold',
      version: '2',
      reason: '5 of 20 labelled frauds since the shadow stage began',
    });
    expect(p.since.at(-1)).toBe(nextDay);
    p.frauds.set('2', 25);
    // Not significantly worse, but on an interval too wide to tell: hold.
    p.ci95 = [-0.05, 0.03];
    expect(await controller.tick(MODEL)).toMatchObject({
      kind: 'hold',
      reason: expect.stringContaining('more labelled frauds needed'),
    });
    p.ci95 = undefined;
    clock.advance(DAY);
    expect(await controller.tick(MODEL)).toMatchObject({
      kind: 'transition',
      transition: { from: 'shadow', to: 'canary', percent: 10 },
    });
    expect(registry.roles()).toEqual({ active: '1', canary: { version: '2', percent: 10 } });
    expect((await read()).promotion?.candidate).toMatchObject({
      stage: 'canary',
      step: 0,
      percent: 10,
      evidence_from: new Date(nextDay + DAY).toISOString(),
    });
    p.frauds.set('2', 19);
    expect(await controller.tick(MODEL)).toMatchObject({ kind: 'hold' });
    expect(p.since.at(-1)).toBe(nextDay + DAY);
    p.frauds.set('2', 20);
    p.verdict = 'better';
    expect(await controller.tick(MODEL)).toMatchObject({ transition: { to: 'canary', percent: 50 } });
    p.frauds.set('2', 25);
    expect(await controller.tick(MODEL)).toMatchObject({ transition: { from: 'canary', to: 'active' } });
    expect(registry.roles()).toEqual({ active: '2', previous: '1' });
    const state = await read();
    expect(state.promotion?.candidate).toBeUndefined();
    expect(state.promotion?.picked_through).toBe('2');
    expect(state.promotion?.history.map((t) => [t.from, t.to, t.percent])).toEqual([
      ['eligible', 'shadow', undefined],
      ['shadow', 'canary', 10],
      ['canary', 'canary', 50],
      ['canary', 'active', undefined],
    ]);
    expect(state.promotion?.history[3]?.evidence).toMatchObject({
      stage_frauds: 25,
      comparison: { champion: '1', challenger: '2', verdict: 'better' },
    });
    expect(audit.filter((a) => a.audit === 'promotion').map((a) => a.to)).toEqual([
      'shadow',
      'canary',
      'canary',
      'active',
    ]);
    expect(await controller.tick(MODEL)).toMatchObject({ kind: 'idle' });
  });

  it('rolls back a worse version from canary, marks it, and never picks it again', async () => {
    const { read, registry, performance: p, controller, transitions } = await setup({ '4': 'eligible' });
    await controller.tick(MODEL);
    p.challenger = '4';
    p.frauds.set('4', 30);
    p.verdict = 'no_significant_difference';
    expect(await controller.tick(MODEL)).toMatchObject({ transition: { to: 'canary' } });
    p.verdict = 'worse';
    const r = await controller.tick(MODEL);
    expect(r).toMatchObject({
      kind: 'transition',
      transition: { version: '4', from: 'canary', to: 'rolled_back' },
    });
    expect(r.kind === 'transition' && r.transition.reason).toMatch(/^worse than 1: AUC difference -0.08/);
    expect(registry.roles()).toEqual({ active: '1' });
    expect((await read()).promotion?.rolled_back.map((x) => x.version)).toEqual(['4']);
    expect(await controller.tick(MODEL)).toEqual({
      kind: 'idle',
      reason: 'no eligible version newer than the active one',
    });
    expect(transitions).toEqual(['shadow', 'canary', 'rolled_back']);
  });

  it('rolls back on a score PSI alarm before any comparison', async () => {
    const { registry, controller } = await setup();
    await controller.tick(MODEL);
    const shadow = registry.get(MODEL, '2')!;
    // Scores far outside the reference histogram's mass.
    for (let i = 0; i < 60; i++) shadow.drift.observe(new Float32Array([1, 0, 2]), 100);
    expect(await controller.tick(MODEL)).toMatchObject({
      transition: { to: 'rolled_back', reason: expect.stringMatching(/^score PSI \d/) },
    });
  });

  it('an operator cancels by taking the role; the policy leaves the operator’s shadow and that version alone', async () => {
    const { fleet, controller, read } = await setup();
    await controller.tick(MODEL);
    await fleet.clearShadow(MODEL);
    expect(await controller.tick(MODEL)).toMatchObject({
      transition: { to: 'cancelled', reason: 'its shadow role was changed by someone else' },
    });
    // Not picked again.
    expect(await controller.tick(MODEL)).toMatchObject({ kind: 'idle' });
    await fleet.setShadow(MODEL, { version: '3' });
    expect(await controller.tick(MODEL)).toEqual({
      kind: 'idle',
      reason: 'a shadow or canary set by an operator is in place',
    });
    // The operator's changes kept the policy's record.
    expect((await read()).promotion?.history.map((t) => t.to)).toEqual(['shadow', 'cancelled']);
  });

  it('an operator’s activation during a canary cancels it, and a rollback after the policy’s activation sticks', async () => {
    const { fleet, controller, performance: p, registry } = await setup({ '2': 'eligible', '3': 'eligible' });
    await controller.tick(MODEL);
    p.challenger = '3';
    p.frauds.set('3', 30);
    p.verdict = 'better';
    await controller.tick(MODEL);
    expect(registry.roles().canary?.version).toBe('3');
    await fleet.activate(MODEL, '2');
    expect(await controller.tick(MODEL)).toMatchObject({
      transition: { version: '3', to: 'cancelled', reason: 'the active version changed from 1 to 2' },
    });
    expect(registry.roles()).toMatchObject({ active: '2', canary: { version: '3' } });
    await fleet.clearCanary(MODEL);
    // 3 was taken up once: the operator decides now. And an operator's rollback is not undone either.
    expect(await controller.tick(MODEL)).toMatchObject({ kind: 'idle' });
    await fleet.rollback(MODEL);
    expect(await controller.tick(MODEL)).toMatchObject({ kind: 'idle' });
    expect(registry.roles().active).toBe('1');
  });

  it('marks a version that cannot load, but not one the control plane failed to take', async () => {
    const plane = new MemoryControlPlane(fakeClock());
    let failWrites = 0;
    const flaky: ControlPlane = Object.assign(Object.create(plane) as ControlPlane, {
      write: (...args: Parameters<ControlPlane['write']>) =>
        failWrites-- > 0 ? Promise.reject(new Error('ECONNRESET')) : plane.write(...args),
    });
    const { controller, source, read } = await setup({ '2': 'eligible', '4': 'eligible' }, flaky);
    failWrites = 1;
    expect(await controller.tick(MODEL)).toMatchObject({ kind: 'error' });
    expect((await read()).promotion).toBeUndefined();
    source.failing.set(
      '4',
      new ModelLoadError('checksum_mismatch', 'member a.onnx does not match its sha256', MODEL, '4'),
    );
    expect(await controller.tick(MODEL)).toMatchObject({
      transition: { version: '4', to: 'rolled_back', reason: expect.stringMatching(/^cannot serve: /) },
    });
    expect((await read()).shadow).toBeUndefined();
  });

  it('two replicas running the policy make one transition: the other sees a conflict', async () => {
    const a = await setup();
    const b = await setup(undefined, a.plane, 'b');
    const results = await Promise.all([a.controller.tick(MODEL), b.controller.tick(MODEL)]);
    expect(results.map((r) => r.kind).sort()).toEqual(['conflict', 'transition']);
    expect((await a.read()).promotion?.history).toHaveLength(1);
  });
});

describe('nextPromotionStep', () => {
  const candidate = { version: '2', stage: 'shadow' as const, champion: '1', since: '', evidence_from: '' };
  it('rolls back on the inference error rate once enough rows ran', () => {
    expect(nextPromotionStep(candidate, { frauds: 0, inference: { rows: 99, failed: 99 } }, POLICY)).toEqual({
      kind: 'hold',
      reason: 'no live comparison with the active version yet',
    });
    expect(nextPromotionStep(candidate, { frauds: 0, inference: { rows: 200, failed: 3 } }, POLICY)).toEqual({
      kind: 'rollback',
      reason: 'inference error rate 0.015 > 0.01 over 200 rows',
    });
  });
});
