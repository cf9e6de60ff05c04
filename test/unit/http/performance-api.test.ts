import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { createService, type Service } from '../../../src/wiring/service.js';
import { silentLogger } from '../../helpers/logger.js';

const ADMIN = 'performance-api-admin-token-0123';
const tx = (id: string, amount: number) => ({
  transaction_id: id,
  timestamp: '2018-08-09T10:00:00Z',
  customer_id: `C-${id}`,
  terminal_id: 'T1',
  amount,
});
const label = (id: string, fraud: boolean) => ({
  type: 'label',
  transaction_id: id,
  customer_id: `C-${id}`,
  terminal_id: 'T1',
  transaction_timestamp: '2018-08-09T10:00:00Z',
  is_fraud: fraud,
  labeled_at: '2018-08-10T10:00:00Z',
});

describe('GET /admin/models/:name/performance on the embedded store', () => {
  let s: Service;
  beforeAll(async () => {
    s = await createService(
      loadConfig({
        MODEL_DIR: 'test/fixtures/models',
        MODEL_VERSION: '2',
        ADMIN_TOKEN: ADMIN,
        LOG_LEVEL: 'silent',
        REQUEST_DEADLINE_MS: '10000',
      }),
      { logger: silentLogger() },
    );
  });
  afterAll(() => s?.close());
  const admin = (method: 'GET' | 'PUT', url: string, payload?: object) =>
    s.app.inject({
      method,
      url,
      ...(payload ? { payload } : {}),
      headers: { authorization: `Bearer ${ADMIN}` },
    });

  it('joins labels posted to /v1/events with the decisions of both versions, and exports the gauges', async () => {
    expect((await admin('PUT', '/admin/models/fraudscore/shadow', { version: '1' })).statusCode).toBe(200);
    const txs = Array.from({ length: 40 }, (_, i) => tx(`p${i}`, 5 + i * 20));
    const scored = await s.app.inject({
      method: 'POST',
      url: '/v1/score/batch',
      payload: { transactions: txs },
    });
    expect(scored.statusCode).toBe(200);
    await s.flushDecisions();
    const events = [
      ...txs.map((t, i) => label(t.transaction_id, i % 4 === 0)),
      label('never-scored', true),
      label('never-scored', true),
    ];
    const posted = await s.app.inject({ method: 'POST', url: '/v1/events', payload: { events } });
    expect(posted.statusCode, posted.body).toBe(200);
    const r = await admin('GET', '/admin/models/fraudscore/performance');
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body.unscored_labels).toBe(1);
    expect(
      body.versions.map((v: { version: string; role: string; labelled: number; frauds: number }) => [
        v.version,
        v.role,
        v.labelled,
        v.frauds,
      ]),
    ).toEqual([
      ['1', 'shadow', 40, 10],
      ['2', 'active', 40, 10],
    ]);
    expect(body.versions[1].label_latency_p50_hours).toEqual(expect.any(Number));
    // 10 frauds: under PERFORMANCE_MIN_FRAUDS (30), so no verdict yet.
    expect(body.comparison).toMatchObject({
      champion: '2',
      challenger: '1',
      paired: true,
      n: 40,
      frauds: 10,
      verdict: 'insufficient_data',
    });
    const metrics = (await s.app.inject('/metrics')).body;
    expect(metrics).toMatch(
      /fraudscore_labelled_total\{model_version="2",decision="\w+",label="fraud"\} \d+/,
    );
    expect(metrics).toContain('fraudscore_labels_unscored_total 1');
    expect(metrics).toMatch(/fraudscore_model_auc\{model_version="2",role="active"\} [\d.]+/);
    expect(metrics).toMatch(/fraudscore_model_precision_floor\{at="decline"\} 0.5/);
  });

  it('answers bad input with a clear 4xx', async () => {
    const bad = await admin('GET', '/admin/models/fraudscore/performance?since=31/01/2026');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('invalid_request');
    expect((await admin('GET', '/admin/models/fraudscore/performance?foo=1')).statusCode).toBe(400);
    expect((await admin('GET', '/admin/models/nope/performance')).json().error.code).toBe('model_not_found');
    expect((await s.app.inject('/admin/models/fraudscore/performance')).statusCode).toBe(401);
    const since = await admin('GET', '/admin/models/fraudscore/performance?since=2999-01-01');
    expect(since.json()).toMatchObject({ since: '2999-01-01T00:00:00.000Z' });
  });
});
