/**
 * Feature staleness (issue 15, item 5): the time since the workers last made progress, counted only while they
 * lag, read from their progress records in the background; answers say `features_stale` beyond
 * MAX_FEATURE_STALENESS_MS and still score. Time is a manual clock: nothing here waits on the wall clock except
 * for the service's background read to come round (polled, never measured).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryProgressStore } from '../../../src/adapters/memory/memory-progress.js';
import { loadConfig } from '../../../src/config.js';
import type { WorkerProgress, WorkerProgressStore } from '../../../src/ports/worker-progress.js';
import { FeatureStaleness } from '../../../src/usecases/staleness.js';
import { createService, type Service } from '../../../src/wiring/service.js';
import { manualClock } from '../../conformance/progress-store.suite.js';
import { captureLogger, type LogLine, silentLogger } from '../../helpers/logger.js';
import { waitFor } from '../../helpers/wait.js';
import { parseExposition } from '../deploy/promql.js';

const T0 = Date.parse('2026-03-01T00:00:00Z');
const MIN = 60_000;

/** A progress store whose reads can be made to fail, counting them. */
function flakyStore(inner: WorkerProgressStore) {
  const s = {
    down: false,
    reads: 0,
    record: (p: WorkerProgress) => inner.record(p),
    remove: (m: string) => inner.remove(m),
    readAll: async () => {
      s.reads++;
      if (s.down) throw new Error('connection refused');
      return inner.readAll();
    },
  };
  return s;
}

describe('FeatureStaleness', () => {
  const setup = (maxMs = 5 * MIN, logs: LogLine[] = []) => {
    const m = manualClock(T0);
    const progress = flakyStore(new MemoryProgressStore(m.clock, 10 * MIN));
    const staleness = new FeatureStaleness({
      progress,
      clock: m.clock,
      logger: captureLogger(logs, 'info'),
      maxMs,
    });
    return { m, progress, staleness };
  };

  it('is 0 with no worker, and for a worker with nothing to consume however long since it applied', async () => {
    const { m, progress, staleness } = setup();
    await staleness.refresh();
    expect(staleness.seconds()).toBe(0);
    await progress.record({ member: 'w', at: T0, progressAt: T0, lag: 0 });
    m.advance(3 * MIN);
    await progress.record({ member: 'w', at: m.clock.now(), progressAt: m.clock.now(), lag: 0 });
    m.advance(9 * MIN);
    await staleness.refresh();
    expect(staleness.seconds()).toBe(0);
    expect(staleness.stale()).toBe(false);
  });

  it('counts from the last progress of a lagging worker, the worst worker first; stale beyond the bound', async () => {
    const { m, progress, staleness } = setup();
    await progress.record({ member: 'a', at: T0, progressAt: T0 - 2 * MIN, lag: 40 });
    await progress.record({ member: 'b', at: T0, progressAt: T0 - 4 * MIN, lag: 1 });
    await progress.record({ member: 'c', at: T0, progressAt: T0 - 9 * MIN, lag: 0 });
    await staleness.refresh();
    expect(staleness.seconds()).toBe(240);
    expect(staleness.stale()).toBe(false);
    // Between reads the time goes on counting from what was read.
    m.advance(MIN + 1);
    expect(staleness.seconds()).toBe(300.001);
    expect(staleness.stale()).toBe(true);
    // Progress again: current.
    await progress.record({ member: 'b', at: m.clock.now(), progressAt: m.clock.now(), lag: 0 });
    await progress.record({ member: 'a', at: m.clock.now(), progressAt: m.clock.now() - 1000, lag: 3 });
    await staleness.refresh();
    expect(staleness.seconds()).toBe(1);
    expect(staleness.stale()).toBe(false);
  });

  it('answers from memory: reads only when refreshed, one read at a time', async () => {
    const { progress, staleness } = setup();
    for (let i = 0; i < 100; i++) staleness.stale();
    expect(progress.reads).toBe(0);
    await Promise.all([staleness.refresh(), staleness.refresh(), staleness.refresh()]);
    expect(progress.reads).toBe(1);
  });

  it('while the records cannot be read, counts every worker from the last moment it was known current', async () => {
    const logs: LogLine[] = [];
    const { m, progress, staleness } = setup(5 * MIN, logs);
    await progress.record({ member: 'idle', at: T0, progressAt: T0, lag: 0 });
    await staleness.refresh();
    expect(staleness.seconds()).toBe(0);
    progress.down = true;
    m.advance(2 * MIN);
    await staleness.refresh();
    expect(staleness.seconds()).toBe(120);
    m.advance(4 * MIN);
    await staleness.refresh();
    expect(staleness.stale()).toBe(true);
    progress.down = false;
    await progress.record({ member: 'idle', at: m.clock.now(), progressAt: m.clock.now(), lag: 0 });
    await staleness.refresh();
    expect(staleness.seconds()).toBe(0);
    expect(logs.map((l) => l.msg)).toEqual([
      'cannot read the worker progress; counting staleness from the last read',
      'features are stale: answers carry features_stale',
      'worker progress readable again',
      'features are current again',
    ]);
  });

  it('never says stale with a bound of 0', async () => {
    const { progress, staleness } = setup(0);
    await progress.record({ member: 'a', at: T0, progressAt: T0 - 600 * MIN, lag: 1 });
    await staleness.refresh();
    expect(staleness.seconds()).toBe(36_000);
    expect(staleness.stale()).toBe(false);
  });
});

describe('serve with stale features', () => {
  let s: Service | undefined;
  afterEach(async () => {
    await s?.close();
    s = undefined;
  });

  const score = (svc: Service, id: string) =>
    svc.app.inject({
      method: 'POST',
      url: '/v1/score',
      payload: {
        transaction_id: id,
        timestamp: '2018-08-09T10:00:00Z',
        customer_id: 'C1',
        terminal_id: 'T1',
        amount: 42.5,
      },
    });
  const gauge = async (svc: Service, name: string, labels: Record<string, string> = {}) => {
    const r = await svc.app.inject('/metrics');
    const found = parseExposition(r.body).filter(
      (x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v),
    );
    return found.length === 1 ? found[0]!.value : undefined;
  };

  async function serve(env: Record<string, string>) {
    const m = manualClock(T0);
    const progress = new MemoryProgressStore(m.clock);
    s = await createService(loadConfig({ MODEL_DIR: 'test/fixtures/models', ...env }), {
      logger: silentLogger(),
      clock: m.clock,
      progress,
    });
    return { m, progress, s };
  }

  it('scores with the model and says features_stale past the bound, caches no such answer, recovers', async () => {
    const { m, progress, s } = await serve({ MAX_FEATURE_STALENESS_MS: String(5 * MIN) });
    await progress.record({ member: 'w', at: T0, progressAt: T0 - 6 * MIN, lag: 25 });
    await waitFor(
      async () => (await gauge(s, 'fraudscore_feature_staleness_seconds')) === 360,
      10_000,
      'a read',
    );
    const first = await score(s, 'stale-1');
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({
      degraded: true,
      degraded_reasons: ['features_stale'],
      model: { name: 'fraudscore', version: '2' },
    });
    expect(first.json().score).toBeGreaterThanOrEqual(0);
    expect(await gauge(s, 'fraudscore_degraded_total', { reason: 'features_stale' })).toBe(1);

    // The worker catches up; the retry of the same transaction is scored afresh, not answered from a cache.
    await progress.record({ member: 'w', at: m.clock.now(), progressAt: m.clock.now(), lag: 0 });
    await waitFor(
      async () => (await gauge(s, 'fraudscore_feature_staleness_seconds')) === 0,
      10_000,
      'a read',
    );
    const retry = await score(s, 'stale-1');
    expect(retry.json()).toMatchObject({ degraded: false, score: first.json().score });
    expect(retry.json().degraded_reasons).toBeUndefined();
  });

  it('with MAX_FEATURE_STALENESS_MS=0: reports the staleness, never degrades for it', async () => {
    const { progress, s } = await serve({ MAX_FEATURE_STALENESS_MS: '0' });
    await progress.record({ member: 'w', at: T0, progressAt: T0 - 60 * MIN, lag: 25 });
    await waitFor(
      async () => (await gauge(s, 'fraudscore_feature_staleness_seconds')) === 3600,
      10_000,
      'a read',
    );
    expect((await score(s, 'off-1')).json()).toMatchObject({ degraded: false });
  });

  it('with the embedded store and no worker: nothing is stale', async () => {
    s = await createService(loadConfig({ MODEL_DIR: 'test/fixtures/models' }), { logger: silentLogger() });
    expect(await gauge(s, 'fraudscore_feature_staleness_seconds')).toBe(0);
    expect((await score(s, 'none-1')).json()).toMatchObject({ degraded: false });
  });
});
