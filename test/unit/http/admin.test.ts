import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { createService, type Service } from '../../../src/wiring/service.js';
import { captureLogger, type LogLine } from '../../helpers/logger.js';
import { copyModelVersion } from '../../helpers/models.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const TOKEN = 'test-admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const score = (s: Service, customer: string, id: string) =>
  s.app.inject({
    method: 'POST',
    url: '/v1/score',
    payload: {
      transaction_id: id,
      timestamp: '2018-08-09T10:00:00Z',
      customer_id: customer,
      terminal_id: 'T1',
      amount: 10,
    },
  });

describe('admin API', () => {
  let s: Service;
  let dir: string;
  const logs: LogLine[] = [];
  const tmp = tempDirs();
  beforeAll(async () => {
    dir = await tmp('models-');
    await cp('test/fixtures/models', dir, { recursive: true });
    s = await createService(loadConfig({ MODEL_DIR: dir, ADMIN_TOKEN: TOKEN, MODEL_VERSION: '1' }), {
      logger: captureLogger(logs),
    });
  });
  afterAll(() => s.close());

  it('refuses calls without a token (401) and with a wrong one (403), and never logs the token', async () => {
    expect((await s.app.inject('/admin/models')).statusCode).toBe(401);
    const wrong = await s.app.inject({ url: '/admin/models', headers: { authorization: 'Bearer nope' } });
    expect(wrong.statusCode).toBe(403);
    expect(
      (await s.app.inject({ url: '/admin/models', headers: { authorization: `Basic ${TOKEN}` } })).statusCode,
    ).toBe(403);
    await s.app.inject({
      method: 'POST',
      url: '/admin/models/fraudscore/activate',
      headers: auth,
      payload: { version: '1' },
    });
    expect(JSON.stringify(logs)).not.toContain(TOKEN);
  });

  it('lists models with versions, states and evaluation', async () => {
    const r = await s.app.inject({ url: '/admin/models', headers: auth });
    expect(r.statusCode).toBe(200);
    const m = r.json().models.find((x: { name: string }) => x.name === 'fraudscore');
    expect(m.active).toBe('1');
    expect(m.versions.map((v: { version: string; state: string }) => [v.version, v.state])).toEqual([
      ['1', 'active'],
      ['2', 'available'],
    ]);
  });

  it('activates, rolls back, and every response names the version serving', async () => {
    let r = await s.app.inject({
      method: 'POST',
      url: '/admin/models/fraudscore/activate',
      headers: auth,
      payload: { version: '2' },
    });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ active: '2', previous: '1' });
    expect((await score(s, 'C1', 'a1')).json().model.version).toBe('2');
    r = await s.app.inject({ method: 'POST', url: '/admin/models/fraudscore/rollback', headers: auth });
    expect(r.json()).toMatchObject({ active: '1' });
    expect((await score(s, 'C1', 'a2')).json().model.version).toBe('1');
    const audit = logs.filter((l) => l.audit === 'admin').map((l) => l.action);
    expect(audit).toEqual(expect.arrayContaining(['activate', 'rollback']));
  });

  it('sets a sticky canary and a shadow, then clears them', async () => {
    let r = await s.app.inject({
      method: 'PUT',
      url: '/admin/models/fraudscore/canary',
      headers: auth,
      payload: { version: '2', percent: 30 },
    });
    expect(r.statusCode).toBe(200);
    expect(r.json().canary).toEqual({ version: '2', percent: 30 });
    const versions = new Map<string, string>();
    for (let i = 0; i < 400; i++) {
      const customer = `cust-${i % 200}`;
      const v = (await score(s, customer, `c${i}`)).json().model.version;
      if (versions.has(customer)) expect(v).toBe(versions.get(customer));
      versions.set(customer, v);
    }
    const share = [...versions.values()].filter((v) => v === '2').length / versions.size;
    expect(share).toBeGreaterThan(0.15);
    expect(share).toBeLessThan(0.45);
    r = await s.app.inject({ method: 'DELETE', url: '/admin/models/fraudscore/canary', headers: auth });
    expect(r.json().canary).toBeUndefined();

    r = await s.app.inject({
      method: 'PUT',
      url: '/admin/models/fraudscore/shadow',
      headers: auth,
      payload: { version: '2' },
    });
    expect(r.json().shadow).toEqual({ version: '2' });
    const res = (await score(s, 'C9', 'shadowed')).json();
    expect(res).toMatchObject({ model: { version: '1' }, shadow: { version: '2' } });
    await new Promise((done) => setTimeout(done, 20));
    expect(
      logs.some((l) => l.audit === 'shadow' && l.transaction_id === 'shadowed' && l.model_version === '2'),
    ).toBe(true);
    r = await s.app.inject({ method: 'DELETE', url: '/admin/models/fraudscore/shadow', headers: auth });
    expect(r.json().shadow).toBeUndefined();
  });

  it('refuses bad requests and broken versions with a clear reason, while the old version serves', async () => {
    const bad = await s.app.inject({
      method: 'PUT',
      url: '/admin/models/fraudscore/canary',
      headers: auth,
      payload: { version: '2', percent: 150 },
    });
    expect(bad.statusCode).toBe(400);
    const missing = await s.app.inject({
      method: 'POST',
      url: '/admin/models/fraudscore/versions/9/load',
      headers: auth,
    });
    expect(missing.statusCode).toBe(404);
    await writeFile(join(await copyModelVersion(dir, '2', '3'), 'lr.onnx'), 'not an onnx file');
    const corrupt = await s.app.inject({
      method: 'POST',
      url: '/admin/models/fraudscore/activate',
      headers: auth,
      payload: { version: '3' },
    });
    expect(corrupt.statusCode).toBe(422);
    expect(corrupt.json().error.message).toMatch(/checksum/);
    expect((await score(s, 'C1', 'after-corrupt')).json().model.version).toBe('1');
    const listed = (await s.app.inject({ url: '/admin/models', headers: auth })).json().models[0];
    expect(listed.versions.find((v: { version: string }) => v.version === '3').state).toBe('failed');
  });
});

describe('admin API without a token', () => {
  it('is not there at all', async () => {
    const s = await createService(loadConfig({ MODEL_DIR: 'test/fixtures/models' }), {
      logger: captureLogger(),
    });
    try {
      expect((await s.app.inject({ url: '/admin/models', headers: auth })).statusCode).toBe(404);
    } finally {
      await s.close();
    }
  });
});
