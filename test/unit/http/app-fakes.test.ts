/**
 * The composition contract of issue 14: `build(config, deps)` takes everything through its deps, so the app
 * can be assembled from in-memory parts only — fake model sessions (no ONNX file), the in-memory store and
 * control plane (no Redis), a fake clock — and scores through `app.inject()` like the real service.
 */
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryControlPlane } from '../../../src/adapters/memory/memory-control-plane.js';
import { MemoryFeatureStore } from '../../../src/adapters/memory/memory-store.js';
import { loadConfig } from '../../../src/config.js';
import { entityUnion } from '../../../src/domain/features/engine.js';
import { build } from '../../../src/http/app.js';
import type { Logger } from '../../../src/ports/logger.js';
import { Ingest } from '../../../src/usecases/ingest.js';
import { ModelFleet } from '../../../src/usecases/models/fleet.js';
import { ModelRegistry } from '../../../src/usecases/models/registry.js';
import { Scorer } from '../../../src/usecases/scoring/scorer.js';
import { FakeSource, fakeClock, featureSets } from '../models/fakes.js';

const TOKEN = 'a-test-admin-token-of-enough-length';
const quiet: Logger = { info() {}, warn() {}, error() {}, debug() {}, child: () => quiet };
const noop = { observe() {}, inc() {} };

describe('build(config, deps) with in-memory fakes only', () => {
  let app: FastifyInstance;
  let models: ModelRegistry;
  let stopFleet: () => Promise<void>;

  beforeAll(async () => {
    const config = loadConfig({ ADMIN_TOKEN: TOKEN, REQUEST_DEADLINE_MS: '10000' });
    const clock = fakeClock();
    const entities = entityUnion([...featureSets.values()]);
    const store = new MemoryFeatureStore({ horizonMs: 40 * 86_400_000 });
    models = new ModelRegistry({
      source: new FakeSource(['1', '2']),
      logger: quiet,
      clock,
      defaultModel: 'fraudscore',
      batching: { enabled: false, maxRows: 1, maxWaitMs: 0 },
      psiWindow: 100,
    });
    const fleet = new ModelFleet({
      registry: models,
      control: new MemoryControlPlane(clock),
      models: ['fraudscore'],
      replica: 'test',
      clock,
      logger: quiet,
      initialVersion: async () => '1',
    });
    await fleet.start();
    stopFleet = () => fleet.stop();
    const scoring = new Scorer({
      registry: models,
      modelName: 'fraudscore',
      store,
      featureSets,
      entities,
      clock,
      logger: quiet,
      metrics: {
        stageDuration: noop,
        decisions: noop,
        score: noop,
        degraded: noop,
        featureDefaulted: noop,
      },
    });
    app = await build(config, {
      logger: pino({ level: 'silent' }),
      clock,
      registry: new Registry(),
      metrics: { httpDuration: noop },
      scoring,
      ingest: new Ingest({ store, entities, limit: { clock, maxFutureMs: 600_000 } }),
      models,
      fleet,
      version: 'test',
    });
  });
  afterAll(async () => {
    await app.close();
    await stopFleet();
    await models.close();
  });

  const tx = (id: string, amount: number) => ({
    transaction_id: id,
    timestamp: '2018-08-02T11:00:00Z',
    customer_id: 'c1',
    terminal_id: 't1',
    amount,
  });

  it('ingests events and scores with the fake members (score = version/100 + 0.1 × TX_AMOUNT)', async () => {
    const events = await app.inject({
      method: 'POST',
      url: '/v1/events',
      payload: { events: [{ type: 'transaction', ...tx('e1', 1), timestamp: '2018-08-01T10:00:00Z' }] },
    });
    expect(events.json()).toMatchObject({ applied: 1, duplicates: 0, late: 0, rejected: [] });

    const res = await app.inject({ method: 'POST', url: '/v1/score', payload: tx('s1', 3) });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.model).toEqual({ name: 'fraudscore', version: '1', feature_set: 'transaction_v2' });
    expect(body.score).toBeCloseTo(0.01 + 0.3, 6);
    expect(body.decision).toBe('approve');
    expect(body.degraded).toBe(false);
  });

  it('serves the admin API from the same build: activating version 2 changes the score', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const act = await app.inject({
      method: 'POST',
      url: '/admin/models/fraudscore/activate',
      headers: auth,
      payload: { version: '2' },
    });
    expect(act.statusCode).toBe(200);
    const res = await app.inject({ method: 'POST', url: '/v1/score', payload: tx('s2', 3) });
    expect(res.json().model.version).toBe('2');
    expect(res.json().score).toBeCloseTo(0.02 + 0.3, 6);
  });
});
