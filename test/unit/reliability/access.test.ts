/**
 * Access and bounds (issue 9): the admin API needs its bearer token and does not exist without one; the token,
 * personal data (device_id, ip) and authorization headers never reach the logs — through the test logger
 * (same redaction list) and through the real `createLogger` of a `fraudscore serve` child process; bodies,
 * batches, event lists and headers are bounded, and what is over a bound is a 4xx, not a crash.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { Socket } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/adapters/clock/system-clock.js';
import { MemoryControlPlane } from '../../../src/adapters/memory/memory-control-plane.js';
import { MemoryFeatureStore } from '../../../src/adapters/memory/memory-store.js';
import { ConfigError, loadConfig } from '../../../src/config.js';
import { createService, type Service } from '../../../src/wiring/service.js';
import { failingStore } from '../../helpers/failing-store.js';
import { captureLogger, type LogLine } from '../../helpers/logger.js';
import { freePort } from '../../helpers/net.js';
import { embeddedServeEnv, spawnCli, stopChild } from '../../helpers/process.js';
import { sleep } from '../../helpers/wait.js';

const TOKEN = 'access-test-token-5b1e0c9a7d';
const WRONG = [
  'Bearer nope',
  `Bearer ${TOKEN.slice(0, -1)}`,
  `Bearer ${TOKEN}x`,
  `Basic ${TOKEN}`,
  TOKEN,
  'Bearer',
  'Bearer ',
];
const DEVICE = 'device-7f3a9c';
const IP = '203.0.113.77';
const MODEL_DIR = 'test/fixtures/models';

const ADMIN_ROUTES: { method: 'GET' | 'POST' | 'PUT' | 'DELETE'; url: string; payload?: object }[] = [
  { method: 'GET', url: '/admin/models' },
  { method: 'POST', url: '/admin/models/fraudscore/versions/1/load' },
  { method: 'POST', url: '/admin/models/fraudscore/activate', payload: { version: '1' } },
  { method: 'POST', url: '/admin/models/fraudscore/rollback' },
  { method: 'PUT', url: '/admin/models/fraudscore/canary', payload: { version: '1', percent: 10 } },
  { method: 'DELETE', url: '/admin/models/fraudscore/canary' },
  { method: 'PUT', url: '/admin/models/fraudscore/shadow', payload: { version: '1' } },
  { method: 'DELETE', url: '/admin/models/fraudscore/shadow' },
];

const tx = (over: Record<string, unknown> = {}) => ({
  transaction_id: `acc-${Math.random().toString(36).slice(2)}`,
  timestamp: '2018-08-09T10:00:00Z',
  customer_id: 'C1',
  terminal_id: 'T1',
  amount: 12.5,
  device_id: DEVICE,
  ip: IP,
  ...over,
});

function expectErrorBody(body: string, status: number) {
  const parsed = JSON.parse(body) as { error: { code: string; message: string } };
  expect(Object.keys(parsed), `${status}: ${body}`).toEqual(['error']);
  expect(parsed.error.code).toMatch(/^[a-z_]+$/);
  expect(parsed.error.message.length).toBeGreaterThan(0);
}

describe('admin API access', () => {
  let s: Service;
  beforeAll(async () => {
    s = await createService(loadConfig({ MODEL_DIR, ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'silent' }), {
      logger: captureLogger([], 'silent'),
    });
  });
  afterAll(() => s.close());

  it('refuses every admin route without a token (401) and with a wrong one (403)', async () => {
    for (const route of ADMIN_ROUTES) {
      const none = await s.app.inject({ ...route });
      expect(none.statusCode, `${route.method} ${route.url}`).toBe(401);
      expectErrorBody(none.body, 401);
      for (const authorization of WRONG) {
        const r = await s.app.inject({ ...route, headers: { authorization } });
        expect(r.statusCode, `${route.method} ${route.url} with ${authorization}`).toBe(403);
        expectErrorBody(r.body, 403);
      }
    }
    const ok = await s.app.inject({ url: '/admin/models', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.statusCode).toBe(200);
  });

  it('has no admin API at all without ADMIN_TOKEN, and refuses a short token at startup', async () => {
    const off = await createService(loadConfig({ MODEL_DIR, LOG_LEVEL: 'silent' }), {
      logger: captureLogger([], 'silent'),
    });
    try {
      for (const route of ADMIN_ROUTES) {
        const r = await off.app.inject({ ...route, headers: { authorization: `Bearer ${TOKEN}` } });
        expect(r.statusCode, `${route.method} ${route.url}`).toBe(404);
        expectErrorBody(r.body, 404);
      }
    } finally {
      await off.close();
    }
    expect(() => loadConfig({ ADMIN_TOKEN: 'short' })).toThrow(ConfigError);
  });
});

const EVENTS_TOKEN = 'events-test-token-93c1e7a0b2';
const events = { events: [{ type: 'transaction', ...tx({ device_id: undefined, ip: undefined }) }] };

describe('events API access (issue 15)', () => {
  const memory = () => new MemoryFeatureStore({ horizonMs: 40 * 86_400_000 });
  // In-memory stand-ins for what a shared store would hold: these tests are about the route, not Redis.
  const control = () => new MemoryControlPlane(systemClock);

  it('is open on the embedded in-memory store without EVENTS_TOKEN (the local demo)', async () => {
    const s = await createService(loadConfig({ MODEL_DIR, LOG_LEVEL: 'silent' }), {
      logger: captureLogger([], 'silent'),
    });
    try {
      const r = await s.app.inject({ method: 'POST', url: '/v1/events', payload: events });
      expect(r.statusCode).toBe(200);
    } finally {
      await s.close();
    }
  });

  it.each([
    ['REDIS_URL', { REDIS_URL: 'redis://127.0.0.1:1' }],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: '127.0.0.1:1' }],
    ['KAFKA_BROKERS', { KAFKA_BROKERS: '127.0.0.1:1' }],
  ])('does not exist on a shared store (%s) without EVENTS_TOKEN: 404', async (_name, env) => {
    const s = await createService(loadConfig({ MODEL_DIR, LOG_LEVEL: 'silent', ...env }), {
      logger: captureLogger([], 'silent'),
      store: memory(),
      control: control(),
    });
    try {
      const r = await s.app.inject({ method: 'POST', url: '/v1/events', payload: events });
      expect(r.statusCode).toBe(404);
      expectErrorBody(r.body, 404);
    } finally {
      await s.close();
    }
  });

  it('needs EVENTS_TOKEN when set (401 without, 403 wrong or the admin token), on a shared store too', async () => {
    for (const env of [{}, { REDIS_URL: 'redis://127.0.0.1:1' }]) {
      const s = await createService(
        loadConfig({ MODEL_DIR, LOG_LEVEL: 'silent', ADMIN_TOKEN: TOKEN, EVENTS_TOKEN, ...env }),
        { logger: captureLogger([], 'silent'), store: memory(), control: control() },
      );
      try {
        const none = await s.app.inject({ method: 'POST', url: '/v1/events', payload: events });
        expect(none.statusCode).toBe(401);
        expectErrorBody(none.body, 401);
        for (const authorization of [...WRONG, `Bearer ${TOKEN}`]) {
          const r = await s.app.inject({
            method: 'POST',
            url: '/v1/events',
            payload: events,
            headers: { authorization },
          });
          expect(r.statusCode, authorization).toBe(403);
        }
        const ok = await s.app.inject({
          method: 'POST',
          url: '/v1/events',
          payload: events,
          headers: { authorization: `Bearer ${EVENTS_TOKEN}` },
        });
        expect(ok.statusCode).toBe(200);
        expect(ok.json().applied).toBe(1);
        // Separate roles: the events token opens no admin route.
        const admin = await s.app.inject({
          url: '/admin/models',
          headers: { authorization: `Bearer ${EVENTS_TOKEN}` },
        });
        expect(admin.statusCode).toBe(403);
      } finally {
        await s.close();
      }
    }
  });

  it('refuses a short token or one equal to the admin token at startup, without printing either', () => {
    for (const [key, value] of [
      ['ADMIN_TOKEN', 'short-secret-a'],
      ['EVENTS_TOKEN', 'short-secret-e'],
    ] as const) {
      let message = '';
      try {
        loadConfig({ [key]: value });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        message = (err as Error).message;
      }
      expect(message).toContain(key);
      expect(message).toContain('at least 16 characters');
      expect(message).not.toContain(value);
    }
    let same = '';
    try {
      loadConfig({ ADMIN_TOKEN: EVENTS_TOKEN, EVENTS_TOKEN });
    } catch (err) {
      same = (err as Error).message;
    }
    expect(same).toContain('must differ');
    expect(same).not.toContain(EVENTS_TOKEN);
  });
});

describe('secrets and personal data stay out of the logs', () => {
  it('through the service: admin calls, refusals, scoring, events and failures log no token, device id or ip', async () => {
    const logs: LogLine[] = [];
    const failing = failingStore();
    for (const store of [undefined, failing]) {
      const s = await createService(
        loadConfig({ MODEL_DIR, ADMIN_TOKEN: TOKEN, EVENTS_TOKEN, LOG_LEVEL: 'trace' }),
        { logger: captureLogger(logs, 'trace'), ...(store ? { store } : {}) },
      );
      try {
        const auth = { authorization: `Bearer ${TOKEN}` };
        for (const route of ADMIN_ROUTES) await s.app.inject({ ...route, headers: auth });
        await s.app.inject({
          method: 'POST',
          url: '/admin/models/fraudscore/activate',
          headers: auth,
          payload: { version: '9' },
        });
        for (const authorization of WRONG)
          await s.app.inject({ url: '/admin/models', headers: { authorization } });
        const scored = await s.app.inject({ method: 'POST', url: '/v1/score?explain=true', payload: tx() });
        expect(scored.statusCode).toBe(200);
        await s.app.inject({
          method: 'POST',
          url: '/v1/score/batch',
          payload: { transactions: [tx(), tx()] },
        });
        await s.app.inject({ method: 'POST', url: '/v1/score', payload: tx({ amount: -1 }) });
        for (const authorization of [`Bearer ${EVENTS_TOKEN}`, ...WRONG])
          await s.app.inject({
            method: 'POST',
            url: '/v1/events',
            payload: { events: [{ type: 'transaction', ...tx() }] },
            headers: { authorization },
          });
        await s.app.inject({ method: 'GET', url: '/v1/nothing', headers: auth });
      } finally {
        await s.close();
      }
    }
    expect(logs.length).toBeGreaterThan(10);
    expect(logs.some((l) => l.audit === 'admin')).toBe(true);
    const text = JSON.stringify(logs);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(EVENTS_TOKEN);
    for (const w of WRONG) if (w.length > 8) expect(text).not.toContain(w.split(' ').at(-1));
    expect(text).not.toContain(DEVICE);
    expect(text).not.toContain(IP);
  }, 30_000);

  it('through a real `fraudscore serve` (createLogger on stdout at trace level)', async () => {
    const port = await freePort();
    const { child, out: chunks } = spawnCli(
      'serve',
      embeddedServeEnv(port, { MODEL_DIR, ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'trace' }),
      Number.POSITIVE_INFINITY,
    );
    const output = () => chunks.join('');
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitForLive(base, child, output, 30_000);
      const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
      for (const route of ADMIN_ROUTES)
        await fetch(`${base}${route.url}`, {
          method: route.method,
          headers: auth,
          ...(route.payload ? { body: JSON.stringify(route.payload) } : {}),
        });
      for (const authorization of WRONG) await fetch(`${base}/admin/models`, { headers: { authorization } });
      const json = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` };
      const scored = await fetch(`${base}/v1/score`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify(tx()),
      });
      expect(scored.status).toBe(200);
      await fetch(`${base}/v1/score`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify(tx({ amount: 'x' })),
      });
      await fetch(`${base}/v1/events`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ events: [{ type: 'transaction', ...tx() }] }),
      });
    } finally {
      await stopChild(child, 10_000);
    }
    const out = output();
    expect(out).toMatch(/"audit":"admin"/);
    expect(out).not.toContain(TOKEN);
    expect(out).not.toContain(DEVICE);
    expect(out).not.toContain(IP);
  }, 60_000);

  it('createLogger redacts authorization headers and tokens wherever the service puts them', async () => {
    const lines = await logThroughCreateLogger([
      ['req', { req: { headers: { authorization: `Bearer ${TOKEN}` } } }],
      ['headers', { headers: { authorization: `Bearer ${TOKEN}` } }],
      ['authorization', { authorization: `Bearer ${TOKEN}` }],
      ['token', { token: TOKEN, adminToken: TOKEN }],
      ['config', { config: { ADMIN_TOKEN: TOKEN } }],
      ['env', { ADMIN_TOKEN: TOKEN }],
    ]);
    expect(Object.keys(lines)).toHaveLength(6);
    for (const [name, line] of Object.entries(lines)) expect(line, name).not.toContain(TOKEN);
    expect(lines.req).toContain('[redacted]');
  }, 30_000);

  it('createLogger redacts device_id and ip wherever a transaction is logged', async () => {
    const t = { transaction_id: 't1', device_id: DEVICE, ip: IP };
    const lines = await logThroughCreateLogger([
      ['nested', { tx: t }],
      ['top level', { ...t }],
      ['in a batch', { transactions: [t] }],
      ['in an event body', { body: { events: [t] } }],
    ]);
    for (const [name, line] of Object.entries(lines)) {
      expect(line, name).not.toContain(DEVICE);
      expect(line, name).not.toContain(IP);
      expect(line, name).toContain('t1');
    }
  }, 30_000);
});

describe('bounded requests', () => {
  let s: Service;
  let port: number;
  beforeAll(async () => {
    s = await createService(loadConfig({ MODEL_DIR, LOG_LEVEL: 'silent' }), {
      logger: captureLogger([], 'silent'),
    });
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    port = (s.app.server.address() as { port: number }).port;
  });
  afterAll(() => s.close());

  it('refuses a body over the limit with 413, whatever Content-Length claims', async () => {
    const big = await s.app.inject({
      method: 'POST',
      url: '/v1/score',
      payload: JSON.stringify({ ...tx(), pad: 'x'.repeat(1024 * 1024) }),
      headers: { 'content-type': 'application/json' },
    });
    expect(big.statusCode).toBe(413);
    expectErrorBody(big.body, 413);
    // A declared length over the limit is refused before the body arrives.
    const declared = await raw(
      port,
      'POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{',
    );
    expect(declared).toMatch(/^HTTP\/1\.1 413 /);
    expectErrorBody(declared.slice(declared.indexOf('\r\n\r\n') + 4), 413);
  });

  it('refuses more than 1000 transactions per batch and 10,000 events per request with 400', async () => {
    const batch = await s.app.inject({
      method: 'POST',
      url: '/v1/score/batch',
      payload: { transactions: Array.from({ length: 1001 }, () => tx()) },
    });
    expect(batch.statusCode).toBe(400);
    expect(batch.json().error.problems[0]).toEqual({
      path: 'transactions',
      message: 'at most 1000 transactions per batch',
    });
    const events = await s.app.inject({
      method: 'POST',
      url: '/v1/events',
      // Small items: 10,001 real events would already be over the 1 MiB body limit (413).
      payload: { events: Array.from({ length: 10_001 }, () => ({})) },
    });
    expect(events.statusCode).toBe(400);
    expect(events.json().error.problems[0].path).toBe('events');
  });

  it('answers a 100 KB header or URL with 431 from Node/Fastify and keeps serving', async () => {
    const body = JSON.stringify(tx());
    const huge = 'a'.repeat(100 * 1024);
    const header = await raw(
      port,
      `POST /v1/score HTTP/1.1\r\nHost: x\r\nX-Pad: ${huge}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    expect(header).toMatch(/^HTTP\/1\.1 431 /);
    const auth = await raw(
      port,
      `GET /admin/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${huge}\r\n\r\n`,
    );
    expect(auth).toMatch(/^HTTP\/1\.1 431 /);
    const url = await raw(port, `GET /health/live?${huge} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(url).toMatch(/^HTTP\/1\.1 431 /);
    // Fastify writes these itself (its clientErrorHandler), in its own format rather than ours:
    // {"error":"Request Header Fields Too Large","message":...,"statusCode":431}.
    const r = await fetch(`http://127.0.0.1:${port}/v1/score`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(r.status).toBe(200);
  });
});

// ------------------------------------------------------------------------------------------------ helpers

/** Writes a raw HTTP/1.1 request and returns everything the server sends until it closes (or 5 s). */
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let got = '';
    const done = () => {
      socket.destroy();
      resolve(got);
    };
    socket.setTimeout(5_000, done);
    socket.on('data', (b: Buffer) => {
      got += b.toString('latin1');
      // One response is enough: stop once its body (Content-Length) is in.
      const head = got.indexOf('\r\n\r\n');
      const len = /content-length: (\d+)/i.exec(got.slice(0, head))?.[1];
      if (head >= 0 && len !== undefined && got.length >= head + 4 + Number(len)) done();
    });
    socket.on('close', done);
    socket.on('error', (err) => (got ? done() : reject(err)));
    socket.connect(port, '127.0.0.1', () => socket.write(request, 'latin1'));
  });
}

/** Polls /health/live (the logger buffers its output, so the "listening" line may not be out yet). */
async function waitForLive(base: string, child: ChildProcess, out: () => string, timeoutMs: number) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}:\n${out()}`);
    const ok = await fetch(`${base}/health/live`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`serve did not answer within ${timeoutMs} ms:\n${out()}`);
}

/** Logs each object through the real createLogger in a child process (it writes to fd 1) and returns the lines by name. */
async function logThroughCreateLogger(entries: [string, object][]): Promise<Record<string, string>> {
  const script = `
    const { createLogger } = await import('./src/adapters/logging/logger.js');
    const log = createLogger('info');
    for (const [name, obj] of JSON.parse(process.env.ENTRIES)) log.info(obj, name);`;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script],
    { env: { ...process.env, ENTRIES: JSON.stringify(entries) }, timeout: 20_000 },
  );
  const lines = stdout.split('\n').filter(Boolean);
  return Object.fromEntries(lines.map((l) => [(JSON.parse(l) as { msg: string }).msg, l]));
}
