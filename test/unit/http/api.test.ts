import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import type { FeatureStore } from '../../../src/ports/feature-store.js';
import { createService, type Service } from '../../../src/wiring/service.js';
import { failingStore } from '../../helpers/failing-store.js';
import { captureLogger, type LogLine } from '../../helpers/logger.js';

const MODEL_DIR = 'test/fixtures/models';
const tx = (over: Record<string, unknown> = {}) => ({
  transaction_id: 'tx-1',
  timestamp: '2018-08-09T10:00:00Z',
  customer_id: 'C1',
  terminal_id: 'T1',
  amount: 42.5,
  ...over,
});

async function service(env: Record<string, string> = {}, store?: FeatureStore, logs: LogLine[] = []) {
  // A generous deadline: these tests are about answers, and a busy machine must not degrade them (the deadline
  // header test shortens it per request).
  return createService(loadConfig({ MODEL_DIR, LOG_LEVEL: 'info', REQUEST_DEADLINE_MS: '10000', ...env }), {
    logger: captureLogger(logs, 'info'),
    ...(store ? { store } : {}),
  });
}

describe('scoring API', () => {
  let s: Service;
  const logs: LogLine[] = [];
  beforeAll(async () => {
    s = await service({}, undefined, logs);
  });
  afterAll(() => s.close());
  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    s.app.inject({ method: 'POST', url, payload: payload as object, headers });

  it('scores a transaction with every documented field', async () => {
    const r = await post('/v1/score', tx());
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body).toMatchObject({
      transaction_id: 'tx-1',
      decision: expect.stringMatching(/^(approve|review|decline)$/),
      model: { name: 'fraudscore', version: '2', feature_set: 'transaction_v2' },
      degraded: false,
    });
    expect(body.score).toBeGreaterThanOrEqual(0);
    expect(body.score).toBeLessThanOrEqual(1);
    expect(body.reasons.length).toBeLessThanOrEqual(3);
    for (const reason of body.reasons)
      expect(reason).toEqual({
        feature: expect.any(String),
        value: expect.any(Number),
        explanation: expect.any(String),
      });
    expect(Object.keys(body.timings_ms).sort()).toEqual(['features', 'inference', 'total']);
    expect(body.features).toBeUndefined();
    expect(body.degraded_reasons).toBeUndefined();
  });

  it('explains with every model input by name', async () => {
    const r = await post('/v1/score?explain=true', tx({ transaction_id: 'tx-explain' }));
    const manifest = s.registry.active('fraudscore')!.manifest;
    expect(Object.keys(r.json().features)).toEqual(manifest.inputs);
    expect(r.json().features.TX_AMOUNT).toBe(42.5);
  });

  it('answers a retry the same, never double-counts it, and refuses a reused id with other content', async () => {
    const body = tx({ transaction_id: 'tx-retry', customer_id: 'C-retry' });
    const first = (await post('/v1/score?explain=true', body)).json();
    const events = await post('/v1/events', { events: [{ type: 'transaction', ...body }] });
    expect(events.json()).toMatchObject({ applied: 1, duplicates: 0 });
    const again = (await post('/v1/score?explain=true', body)).json();
    expect(again).toEqual(first);
    expect(again.features.CUSTOMER_ID_NB_TX_1DAY_WINDOW).toBe(1);
    const conflict = await post('/v1/score', { ...body, amount: 1 });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json().error.code).toBe('conflict');
  });

  it('re-shapes a remembered answer for the options of the retry (?explain), single and batch (issue 15)', async () => {
    const body = tx({ transaction_id: 'tx-explain-retry', customer_id: 'C-explain-retry' });
    const plain = (await post('/v1/score', body)).json();
    expect(plain.features).toBeUndefined();
    const explained = (await post('/v1/score?explain=true', body)).json();
    const manifest = s.registry.active('fraudscore')!.manifest;
    expect(Object.keys(explained.features)).toEqual(manifest.inputs);
    expect(explained.features.TX_AMOUNT).toBe(body.amount);
    const { features, ...rest } = explained;
    expect(rest).toEqual(plain);
    expect((await post('/v1/score', body)).json()).toEqual(plain);

    const batch = [1, 2].map((i) => tx({ transaction_id: `tx-explain-batch-${i}`, amount: 10 * i }));
    const first = (await post('/v1/score/batch', { transactions: batch })).json();
    expect(first.results.every((r: { features?: unknown }) => r.features === undefined)).toBe(true);
    const again = (await post('/v1/score/batch?explain=true', { transactions: batch })).json();
    expect(again.results.map((r: { features: { TX_AMOUNT: number } }) => r.features.TX_AMOUNT)).toEqual([
      10, 20,
    ]);
    expect(again.results.map(({ features: _, ...r }: { features: unknown }) => r)).toEqual(first.results);
  });

  it('uses the velocity features of applied events', async () => {
    const c = { customer_id: 'C-vel', terminal_id: 'T-vel' };
    await post('/v1/events', {
      events: [
        {
          type: 'transaction',
          ...tx({ ...c, transaction_id: 'v1', timestamp: '2018-08-09T09:00:00Z', amount: 10 }),
        },
        {
          type: 'transaction',
          ...tx({ ...c, transaction_id: 'v2', timestamp: '2018-08-09T09:30:00Z', amount: 20 }),
        },
      ],
    });
    const f = (await post('/v1/score?explain=true', tx({ ...c, transaction_id: 'v3', amount: 30 }))).json()
      .features;
    expect(f.CUSTOMER_ID_NB_TX_1DAY_WINDOW).toBe(3);
    expect(f.CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW).toBe(20);
    expect(f.CUSTOMER_ID_SECONDS_SINCE_PREV_TX).toBe(1800);
  });

  it('scores a batch in request order', async () => {
    const txs = [1, 2, 3].map((i) => tx({ transaction_id: `b${i}`, amount: i * 100 }));
    const r = await post('/v1/score/batch', { transactions: txs });
    expect(r.statusCode).toBe(200);
    expect(r.json().results.map((x: { transaction_id: string }) => x.transaction_id)).toEqual([
      'b1',
      'b2',
      'b3',
    ]);
  });

  it('refuses bad batches with the path of the problem', async () => {
    const bad = await post('/v1/score/batch', {
      transactions: [tx({ transaction_id: 'ok' }), tx({ amount: 'x' })],
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.problems).toEqual([
      { path: 'transactions.1.amount', message: expect.any(String) },
    ]);
    const dup = await post('/v1/score/batch', { transactions: [tx(), tx()] });
    expect(dup.statusCode).toBe(400);
    expect(dup.json().error.problems[0].path).toBe('transactions.1.transaction_id');
    const big = await post('/v1/score/batch', {
      transactions: Array.from({ length: 1001 }, (_, i) => tx({ transaction_id: `x${i}` })),
    });
    expect(big.statusCode).toBe(400);
    expect(big.json().error.problems[0]).toEqual({
      path: 'transactions',
      message: 'at most 1000 transactions per batch',
    });
    expect((await post('/v1/score/batch', { transactions: [] })).statusCode).toBe(400);
  });

  it('applies events, reporting duplicates and each rejected event with its problems', async () => {
    const e = { type: 'transaction', ...tx({ transaction_id: 'ev1', customer_id: 'C-ev' }) };
    const label = {
      type: 'label',
      transaction_id: 'ev1',
      customer_id: 'C-ev',
      terminal_id: 'T1',
      transaction_timestamp: '2018-08-09T10:00:00Z',
      is_fraud: true,
    };
    const r = await post('/v1/events', {
      events: [e, e, label, { type: 'label', is_fraud: 'yes' }, { type: 'refund' }],
    });
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body).toMatchObject({ applied: 2, duplicates: 1, late: 0 });
    expect(body.rejected.map((x: { index: number }) => x.index)).toEqual([3, 4]);
    expect(body.rejected[0].problems.map((p: { path: string }) => p.path)).toContain('events.3.is_fraud');
    expect(body.rejected[1].problems[0].path).toBe('events.4.type');
  });

  it.each([
    ['a zero-width space', 'cust\u200b1'],
    ['a right-to-left override', 'cust\u202e1'],
  ])('refuses a customer id with %s: 400 to score, rejected as an event', async (_name, id) => {
    const scored = await post(
      '/v1/score',
      tx({ transaction_id: `inv-${id.codePointAt(4)}`, customer_id: id }),
    );
    expect(scored.statusCode).toBe(400);
    expect(scored.json().error.code).toBe('invalid_request');
    expect(scored.json().error.problems.map((p: { path: string }) => p.path)).toEqual(['customer_id']);
    const batch = await post('/v1/score/batch', { transactions: [tx({ customer_id: id })] });
    expect(batch.statusCode).toBe(400);
    expect(batch.json().error.problems.map((p: { path: string }) => p.path)).toEqual([
      'transactions.0.customer_id',
    ]);
    const label = {
      type: 'label',
      transaction_id: 'inv-label',
      customer_id: id,
      terminal_id: 'T1',
      transaction_timestamp: '2018-08-09T10:00:00Z',
      is_fraud: true,
    };
    const events = await post('/v1/events', {
      events: [{ type: 'transaction', ...tx({ transaction_id: 'inv-ev', customer_id: id }) }, label],
    });
    expect(events.statusCode).toBe(200);
    expect(events.json()).toEqual({
      applied: 0,
      duplicates: 0,
      late: 0,
      rejected: [
        { index: 0, problems: [{ path: 'events.0.customer_id', message: expect.any(String) }] },
        { index: 1, problems: [{ path: 'events.1.customer_id', message: expect.any(String) }] },
      ],
    });
  });

  it.each([
    ['a schema violation', tx({ amount: -1, timestamp: 'yesterday' }), 400, 'invalid_request'],
    ['a missing field', { transaction_id: 'x' }, 400, 'invalid_request'],
    ['an array body', [1, 2], 400, 'invalid_request'],
  ])('refuses %s with 400 and the problems', async (_name, payload, status, code) => {
    const r = await post('/v1/score', payload);
    expect(r.statusCode).toBe(status);
    expect(r.json().error.code).toBe(code);
    expect(r.json().error.problems.length).toBeGreaterThan(0);
    expect(r.body).not.toMatch(/at .*\.ts:\d+/);
  });

  it('maps transport errors to 400, 413, 415 and 404 without stack traces', async () => {
    const malformed = await s.app.inject({
      method: 'POST',
      url: '/v1/score',
      payload: '{"amount": ',
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe('invalid_json');
    const text = await s.app.inject({
      method: 'POST',
      url: '/v1/score',
      payload: 'amount=1',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.statusCode).toBe(415);
    const huge = await s.app.inject({
      method: 'POST',
      url: '/v1/score',
      payload: JSON.stringify({ ...tx(), pad: 'x'.repeat(2 * 1024 * 1024) }),
      headers: { 'content-type': 'application/json' },
    });
    expect(huge.statusCode).toBe(413);
    const missing = await s.app.inject({ method: 'GET', url: '/v1/nothing' });
    expect(missing.statusCode).toBe(404);
    for (const r of [malformed, text, huge, missing]) expect(r.body).not.toMatch(/\n\s+at /);
  });

  it('honours a shorter deadline header and refuses a bad one', async () => {
    const bad = await post('/v1/score', tx({ transaction_id: 'dl0' }), { 'x-request-deadline-ms': 'soon' });
    expect(bad.statusCode).toBe(400);
    const tiny = await post('/v1/score', tx({ transaction_id: 'dl1' }), {
      'x-request-deadline-ms': '0.000001',
    });
    expect(tiny.statusCode).toBe(200);
    expect(tiny.json().degraded).toBe(true);
    expect(tiny.json().degraded_reasons).toEqual(expect.arrayContaining([expect.stringMatching(/timeout/)]));
  });

  it('falls back to the rules when the model cannot run', async () => {
    const v = s.registry.active('fraudscore')!;
    const original = v.score.bind(v);
    v.score = () => Promise.reject(new Error('onnx exploded'));
    try {
      const r = await post('/v1/score', tx({ transaction_id: 'fb1', amount: 500 }));
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({ degraded: true, degraded_reasons: ['model_error'], score: 0.9 });
      expect(r.json().reasons[0].feature).toBe('TX_AMOUNT');
    } finally {
      v.score = original;
    }
  });

  it('writes one audit record per decision', async () => {
    await post('/v1/score', tx({ transaction_id: 'audit-1' }));
    const audit = logs.filter((l) => l.audit === 'decision' && l.transaction_id === 'audit-1');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ model_version: '2', decision: expect.any(String), degraded: false });
  });

  it('writes no request field but the ids into an audit record, whose line is not redacted', async () => {
    const r = await post(
      '/v1/score',
      tx({ transaction_id: 'audit-2', device_id: 'dev-audit-secret', ip: '203.0.113.77' }),
    );
    expect(r.statusCode).toBe(200);
    const audit = logs.filter((l) => l.audit === 'decision' && l.transaction_id === 'audit-2');
    expect(audit).toHaveLength(1);
    const line = JSON.stringify(audit[0]);
    expect(line).not.toContain('dev-audit-secret');
    expect(line).not.toContain('203.0.113.77');
    expect(Object.keys(audit[0]!).sort()).toEqual(
      expect.arrayContaining([
        'transaction_id',
        'customer_id',
        'model',
        'model_version',
        'score',
        'decision',
      ]),
    );
    expect(Object.keys(audit[0]!)).not.toEqual(expect.arrayContaining(['device_id']));
    expect(Object.keys(audit[0]!)).not.toEqual(expect.arrayContaining(['ip']));
  });

  it('serves health, OpenAPI and docs', async () => {
    expect((await s.app.inject('/health/live')).json()).toEqual({ status: 'ok' });
    const ready = await s.app.inject('/health/ready');
    expect(ready.statusCode).toBe(200);
    expect(ready.json().checks.model.ok).toBe(true);
    const doc = (await s.app.inject('/openapi.json')).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/score', '/v1/score/batch', '/v1/events']),
    );
    expect(doc.paths['/v1/score'].post.requestBody.content['application/json'].schema.required).toEqual(
      expect.arrayContaining(['transaction_id', 'timestamp', 'customer_id', 'terminal_id', 'amount']),
    );
    const docs = await s.app.inject('/docs');
    expect(docs.headers['content-type']).toMatch(/text\/html/);
    expect(docs.body).toContain('POST /v1/score');
  });
});

describe('scoring API when things fail', () => {
  it('scores with default features, degraded, when the store fails', async () => {
    const failing = failingStore();
    const s = await service({}, failing);
    try {
      const r = await s.app.inject({ method: 'POST', url: '/v1/score?explain=true', payload: tx() });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({ degraded: true, degraded_reasons: ['features_unavailable'] });
      expect(r.json().features).toMatchObject({
        CUSTOMER_ID_NB_TX_1DAY_WINDOW: 1,
        CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW: 42.5,
        TERMINAL_ID_NB_TX_7DAY_WINDOW: 0,
      });
      const ready = await s.app.inject('/health/ready');
      expect(ready.statusCode).toBe(503);
      expect(ready.json().checks.feature_store.ok).toBe(false);
      const events = await s.app.inject({
        method: 'POST',
        url: '/v1/events',
        payload: { events: [{ type: 'transaction', ...tx() }] },
      });
      expect(events.statusCode).toBe(503);
    } finally {
      await s.close();
    }
  });

  it('is not ready without a model, and still answers with the rules', async () => {
    const s = await service({ MODEL_NAME: 'nonexistent' });
    try {
      expect((await s.app.inject('/health/ready')).statusCode).toBe(503);
      const r = await s.app.inject({ method: 'POST', url: '/v1/score', payload: tx({ amount: 5 }) });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({ degraded: true, model: { version: 'none' } });
    } finally {
      await s.close();
    }
  });
});
