/**
 * Issue 15, item 2 (event-time sanity) through the HTTP API, on the embedded store, with the processing clock
 * fixed at 2018-08-02T12:00Z: events dated more than MAX_EVENT_FUTURE_MS ahead of it are rejected (and never
 * reach the store), score requests dated so are 400s, and the history that follows is applied as if the typo
 * never came.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import type { Clock } from '../../../src/ports/clock.js';
import { createService, type Service } from '../../../src/wiring/service.js';
import { captureLogger } from '../../helpers/logger.js';

const NOW = Date.parse('2018-08-02T12:00:00Z');
const MAX_FUTURE_MS = 600_000;
const iso = (t: number) => new Date(t).toISOString();
const tx = (id: string, timestamp: string, over: Record<string, unknown> = {}) => ({
  transaction_id: id,
  timestamp,
  customer_id: 'c',
  terminal_id: 't',
  amount: 10,
  ...over,
});
const label = (id: string, transaction_timestamp: string, over: Record<string, unknown> = {}) => ({
  type: 'label',
  transaction_id: id,
  customer_id: 'c',
  terminal_id: 't',
  transaction_timestamp,
  is_fraud: true,
  ...over,
});
const problem = (path: string) => ({
  path,
  message: `must not be more than ${MAX_FUTURE_MS} ms after the processing time (2018-08-02T12:00:00.000Z)`,
});

describe('event times ahead of the processing clock (issue 15)', () => {
  let s: Service;
  /** Wall clock fixed at NOW (the bound must come from the injected clock, never Date.now()). */
  const clock: Clock = { now: () => NOW, monotonic: () => performance.now() };
  beforeAll(async () => {
    s = await createService(loadConfig({ MODEL_DIR: 'test/fixtures/models', LOG_LEVEL: 'warn' }), {
      clock,
      logger: captureLogger([], 'warn'),
    });
  });
  afterAll(() => s.close());
  const post = (url: string, payload: unknown) =>
    s.app.inject({ method: 'POST', url, payload: payload as object });
  const events = async (list: unknown[]) => {
    const r = await post('/v1/events', { events: list });
    expect(r.statusCode).toBe(200);
    return r.json();
  };
  const count7d = async (id: string, over: Record<string, unknown> = {}) => {
    const r = await post('/v1/score?explain=true', tx(id, '2018-08-02T11:00:00Z', over));
    expect(r.statusCode).toBe(200);
    return r.json().features.CUSTOMER_ID_NB_TX_7DAY_WINDOW;
  };

  it('rejects a transaction dated 2081 with the reason; the real events that follow are applied', async () => {
    expect(await events([{ type: 'transaction', ...tx('typo', '2081-08-02T09:00:00Z') }])).toEqual({
      applied: 0,
      duplicates: 0,
      late: 0,
      rejected: [{ index: 0, problems: [problem('events.0.timestamp')] }],
    });
    expect(
      await events([
        { type: 'transaction', ...tx('r1', '2018-08-01T09:00:00Z') },
        { type: 'transaction', ...tx('r2', '2018-08-02T09:00:00Z') },
      ]),
    ).toEqual({ applied: 2, duplicates: 0, late: 0, rejected: [] });
    expect(await count7d('r3')).toBe(3);
  });

  it('rejects a label whose transaction is dated 2081; the real events that follow are applied', async () => {
    const who = { customer_id: 'c2', terminal_id: 't2' };
    const out = await events([
      { type: 'transaction', ...tx('l1', '2018-08-01T09:00:00Z', who) },
      label('typo-label', '2081-08-02T09:00:00Z', who),
      { type: 'transaction', ...tx('l2', '2018-08-02T09:00:00Z', who) },
    ]);
    expect(out).toEqual({
      applied: 2,
      duplicates: 0,
      late: 0,
      rejected: [{ index: 1, problems: [problem('events.1.transaction_timestamp')] }],
    });
    expect(await count7d('l3', who)).toBe(3);
  });

  it('takes events up to MAX_EVENT_FUTURE_MS ahead, and replays of the past whatever their age', async () => {
    const who = { customer_id: 'c3', terminal_id: 't3' };
    const out = await events([
      { type: 'transaction', ...tx('edge', iso(NOW + MAX_FUTURE_MS), who) },
      { type: 'transaction', ...tx('beyond', iso(NOW + MAX_FUTURE_MS + 1), who) },
      { type: 'transaction', ...tx('old', '1999-01-01T00:00:00Z', { customer_id: 'c4', terminal_id: 't4' }) },
    ]);
    expect(out).toEqual({
      applied: 2,
      duplicates: 0,
      late: 0,
      rejected: [{ index: 1, problems: [problem('events.1.timestamp')] }],
    });
  });

  it('answers a score request dated beyond the bound with 400 on its timestamp', async () => {
    const r = await post('/v1/score', tx('s2081', '2081-08-02T09:00:00Z'));
    expect(r.statusCode).toBe(400);
    expect(r.json()).toEqual({
      error: { code: 'invalid_request', message: expect.any(String), problems: [problem('timestamp')] },
    });
    expect((await post('/v1/score', tx('s-beyond', iso(NOW + MAX_FUTURE_MS + 1)))).statusCode).toBe(400);
    expect((await post('/v1/score', tx('s-edge', iso(NOW + MAX_FUTURE_MS)))).statusCode).toBe(200);
  });

  it('answers a batch with one transaction dated beyond the bound with 400 on its path', async () => {
    const r = await post('/v1/score/batch', {
      transactions: [tx('b1', '2018-08-02T11:00:00Z'), tx('b2', '2081-08-02T09:00:00Z')],
    });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe('invalid_request');
    expect(r.json().error.problems).toEqual([problem('transactions.1.timestamp')]);
  });
});

describe('MAX_EVENT_FUTURE_MS', () => {
  it('defaults to 10 minutes and may be set', () => {
    expect(loadConfig({}).MAX_EVENT_FUTURE_MS).toBe(600_000);
    expect(loadConfig({ MAX_EVENT_FUTURE_MS: '0' }).MAX_EVENT_FUTURE_MS).toBe(0);
    expect(() => loadConfig({ MAX_EVENT_FUTURE_MS: '-1' })).toThrow(/MAX_EVENT_FUTURE_MS/);
  });

  it('bounds score requests and events by its value', async () => {
    const s = await createService(
      loadConfig({ MODEL_DIR: 'test/fixtures/models', LOG_LEVEL: 'warn', MAX_EVENT_FUTURE_MS: '0' }),
      { clock: { now: () => NOW, monotonic: () => performance.now() }, logger: captureLogger([], 'warn') },
    );
    try {
      const score = (t: number) =>
        s.app.inject({ method: 'POST', url: '/v1/score', payload: tx(`z${t}`, iso(t)) });
      expect((await score(NOW)).statusCode).toBe(200);
      expect((await score(NOW + 1)).statusCode).toBe(400);
      const ev = await s.app.inject({
        method: 'POST',
        url: '/v1/events',
        payload: { events: [{ type: 'transaction', ...tx('z', iso(NOW + 1)) }] },
      });
      expect(ev.json().rejected).toEqual([
        {
          index: 0,
          problems: [
            {
              path: 'events.0.timestamp',
              message: 'must not be more than 0 ms after the processing time (2018-08-02T12:00:00.000Z)',
            },
          ],
        },
      ]);
    } finally {
      await s.close();
    }
  });
});
