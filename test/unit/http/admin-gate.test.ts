import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import type { Card } from '../../../src/domain/models/card.js';
import { createService, type Service } from '../../../src/wiring/service.js';
import { captureLogger, type LogLine } from '../../helpers/logger.js';
import { copyModelVersion } from '../../helpers/models.js';
import { tempDir, tempDirs } from '../../helpers/temp-dir.js';

const TOKEN = 'test-admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

const card = (verdict: 'eligible' | 'rejected'): Card => ({
  schema_version: 1,
  created_at: '2026-11-30T06:00:00Z',
  trigger: { kind: 'manual', by: 'test' },
  champion: { name: 'fraudscore', version: '1' },
  comparison: {
    resamples: 200,
    seed: 7,
    confidence: 0.95,
    metrics: {
      average_precision: { champion: 0.7, candidate: 0.4, delta: -0.3, ci_lower: -0.35, ci_upper: -0.25 },
    },
  },
  gate: {
    verdict,
    rules: [
      {
        metric: 'average_precision',
        statistic: 'ci_lower',
        min: -0.01,
        value: verdict === 'rejected' ? -0.35 : 0.01,
        pass: verdict === 'eligible',
      },
    ],
    reasons: [verdict === 'rejected' ? 'FAIL: lower 95% bound of ΔAP = -0.35' : 'pass'],
  },
});

/** Version `to`, a copy of fixture 2 with a model card whose gate said `verdict`. */
async function withCard(dir: string, to: string, verdict: 'eligible' | 'rejected'): Promise<void> {
  const target = await copyModelVersion(dir, '2', to);
  const path = join(target, 'manifest.json');
  const m = JSON.parse(await readFile(path, 'utf8'));
  await writeFile(path, JSON.stringify({ ...m, card: card(verdict) }));
}

async function service(dir: string, logs: LogLine[], env: Record<string, string> = {}): Promise<Service> {
  return createService(loadConfig({ MODEL_DIR: dir, ADMIN_TOKEN: TOKEN, ...env }), {
    logger: captureLogger(logs),
  });
}

describe('admin API: the model card gates activate and canary', () => {
  let dir: string;
  const logs: LogLine[] = [];
  let s: Service;
  const tmp = tempDirs();
  beforeAll(async () => {
    dir = await tmp('models-gate-');
    await cp('test/fixtures/models', dir, { recursive: true });
    await withCard(dir, '3', 'eligible');
    await withCard(dir, '4', 'rejected');
    s = await service(dir, logs);
  });
  afterAll(() => s.close());

  const post = (url: string, payload: object) =>
    s.app.inject({ method: 'POST', url, headers: auth, payload });

  it('starts on the newest version its gate did not reject, and lists cards and verdicts', async () => {
    const m = (await s.app.inject({ url: '/admin/models', headers: auth })).json().models[0];
    expect(m.active).toBe('3');
    const byVersion = Object.fromEntries(
      m.versions.map((v: { version: string; gate: string }) => [v.version, v]),
    );
    expect(byVersion['1'].gate).toBe('none');
    expect(byVersion['3'].gate).toBe('eligible');
    expect(byVersion['4'].gate).toBe('rejected');
    expect(byVersion['4'].card.comparison.metrics.average_precision.ci_lower).toBe(-0.35);
  });

  it('refuses a rejected version (409 gate_rejected) for activate and canary, and an override without a reason', async () => {
    const r = await post('/admin/models/fraudscore/activate', { version: '4' });
    expect(r.statusCode).toBe(409);
    expect(r.json().error.code).toBe('gate_rejected');
    const c = await s.app.inject({
      method: 'PUT',
      url: '/admin/models/fraudscore/canary',
      headers: auth,
      payload: { version: '4', percent: 10 },
    });
    expect(c.statusCode).toBe(409);
    expect(c.json().error.code).toBe('gate_rejected');
    const noReason = await post('/admin/models/fraudscore/activate?override=true', { version: '4' });
    expect(noReason.statusCode).toBe(400);
    expect(noReason.json().error.code).toBe('invalid_request');
    // Shadowing is for comparison only: never refused.
    const shadow = await s.app.inject({
      method: 'PUT',
      url: '/admin/models/fraudscore/shadow',
      headers: auth,
      payload: { version: '4' },
    });
    expect(shadow.statusCode).toBe(200);
    await s.app.inject({ method: 'DELETE', url: '/admin/models/fraudscore/shadow', headers: auth });
  });

  it('activates it with override=true and a reason, as an audit event', async () => {
    const r = await post(
      `/admin/models/fraudscore/activate?override=true&reason=${encodeURIComponent('incident 42: champion broken')}`,
      {
        version: '4',
      },
    );
    expect(r.statusCode).toBe(200);
    expect(r.json().active).toBe('4');
    const audit = logs.find((l) => l.audit === 'gate_override');
    expect(audit).toMatchObject({
      model: 'fraudscore',
      version: '4',
      action: 'activate',
      refused: 'gate_rejected',
      gate: 'rejected',
      reason: 'incident 42: champion broken',
    });
    expect(
      logs.find((l) => l.audit === 'admin' && l.action === 'activate' && l.override === true),
    ).toMatchObject({
      outcome: 'ok',
      override_reason: 'incident 42: champion broken',
    });
  });
});

describe('admin API with REQUIRE_MODEL_CARD=true', () => {
  it('refuses versions without a card (409 card_missing) unless overridden, and starts on a carded one', async () => {
    const dir = await tempDir('models-card-');
    await cp('test/fixtures/models', dir, { recursive: true });
    await withCard(dir, '3', 'eligible');
    const logs: LogLine[] = [];
    const s = await service(dir, logs, { REQUIRE_MODEL_CARD: 'true' });
    try {
      const m = (await s.app.inject({ url: '/admin/models', headers: auth })).json().models[0];
      expect(m.active).toBe('3');
      const r = await s.app.inject({
        method: 'POST',
        url: '/admin/models/fraudscore/activate',
        headers: auth,
        payload: { version: '2' },
      });
      expect(r.statusCode).toBe(409);
      expect(r.json().error.code).toBe('card_missing');
      const ok = await s.app.inject({
        method: 'POST',
        url: '/admin/models/fraudscore/activate?override=true&reason=legacy',
        headers: auth,
        payload: { version: '2' },
      });
      expect(ok.statusCode).toBe(200);
      expect(logs.find((l) => l.audit === 'gate_override')).toMatchObject({
        refused: 'card_missing',
        gate: 'none',
      });
    } finally {
      await s.close();
    }
  });
});
