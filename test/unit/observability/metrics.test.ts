import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import type { Histogram } from '../../../src/domain/models/manifest.js';
import { binIndex } from '../../../src/domain/scoring/psi.js';
import type { FeatureStore } from '../../../src/ports/feature-store.js';
import { buildInfo } from '../../../src/version.js';
import { createService, type Service } from '../../../src/wiring/service.js';
import { type GeneratedTx, generateTransactions } from '../../helpers/generate.js';
import { silentLogger } from '../../helpers/logger.js';
import { copyModelVersion } from '../../helpers/models.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const FIXTURES = 'test/fixtures/models';
const TOKEN = 'metrics-admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** The Prometheus text exposition format, enough of it for assertions: samples and `# TYPE` lines. */
function parse(text: string) {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable sample: ${line}`);
    const labels = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]),
    );
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  const matching = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return {
    types,
    matching,
    sum: (name: string, labels: Record<string, string> = {}) =>
      matching(name, labels).reduce((a, s) => a + s.value, 0),
    value(name: string, labels: Record<string, string> = {}) {
      const found = matching(name, labels);
      if (found.length !== 1)
        throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}, expected 1`);
      return found[0]!.value;
    },
  };
}

async function scrape(s: Service) {
  const r = await s.app.inject('/metrics');
  expect(r.statusCode).toBe(200);
  expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(r.body);
}

const iso = (t: number) => new Date(t).toISOString();
const transaction = (tx: GeneratedTx, amountFactor = 1) => ({
  transaction_id: tx.id,
  timestamp: iso(tx.t),
  customer_id: tx.customer_id,
  terminal_id: tx.terminal_id,
  amount: Math.round(tx.amount * amountFactor * 100) / 100,
});

describe('metrics after real traffic', () => {
  let s: Service;
  let dir: string;
  const SINGLE = 40;
  const BATCH = 5;
  const tmp = tempDirs();
  beforeAll(async () => {
    dir = await tmp('metrics-models-');
    await cp(FIXTURES, dir, { recursive: true });
    s = await createService(
      loadConfig({ MODEL_DIR: dir, MODEL_VERSION: '1', ADMIN_TOKEN: TOKEN, REQUEST_DEADLINE_MS: '5000' }),
      { logger: silentLogger() },
    );
    const shadow = await s.app.inject({
      method: 'PUT',
      url: '/admin/models/fraudscore/shadow',
      headers: auth,
      payload: { version: '2' },
    });
    expect(shadow.statusCode).toBe(200);
    const txs = generateTransactions({ seed: 5, customers: 30, terminals: 10, days: 2, perDay: 30 });
    for (const tx of txs.slice(0, SINGLE)) {
      const r = await s.app.inject({ method: 'POST', url: '/v1/score', payload: transaction(tx) });
      expect(r.json()).toMatchObject({ degraded: false, model: { version: '1' }, shadow: { version: '2' } });
    }
    // A retry is answered from memory: one more HTTP request, no second decision.
    const retry = await s.app.inject({ method: 'POST', url: '/v1/score', payload: transaction(txs[0]!) });
    expect(retry.statusCode).toBe(200);
    const batch = await s.app.inject({
      method: 'POST',
      url: '/v1/score/batch',
      payload: { transactions: txs.slice(SINGLE, SINGLE + BATCH).map((t) => transaction(t)) },
    });
    expect(batch.statusCode).toBe(200);
    // Shadow scores are computed after the response; give them a moment.
    await new Promise((r) => setTimeout(r, 50));
  });
  afterAll(() => s.close());

  it('declares each metric with its type', async () => {
    const m = await scrape(s);
    expect(Object.fromEntries(m.types)).toMatchObject({
      fraudscore_http_request_duration_seconds: 'histogram',
      fraudscore_scoring_stage_duration_seconds: 'histogram',
      fraudscore_inference_batch_size: 'histogram',
      fraudscore_decisions_total: 'counter',
      fraudscore_score: 'histogram',
      fraudscore_degraded_total: 'counter',
      fraudscore_feature_psi: 'gauge',
      fraudscore_score_psi: 'gauge',
      fraudscore_feature_defaulted_total: 'counter',
      fraudscore_feature_freshness_seconds: 'gauge',
      fraudscore_events_total: 'counter',
      fraudscore_consumer_lag: 'gauge',
      fraudscore_dead_letter_total: 'counter',
      fraudscore_store_write_duration_seconds: 'histogram',
      fraudscore_model_info: 'gauge',
      fraudscore_model_loads_total: 'counter',
      fraudscore_build_info: 'gauge',
    });
  });

  it("keeps prom-client's process and runtime metrics under their standard names, and only those", async () => {
    const m = await scrape(s);
    // What a stock Node.js dashboard or alert queries.
    expect(Object.fromEntries(m.types)).toMatchObject({
      process_cpu_user_seconds_total: 'counter',
      process_cpu_seconds_total: 'counter',
      process_resident_memory_bytes: 'gauge',
      process_start_time_seconds: 'gauge',
      nodejs_eventloop_lag_seconds: 'gauge',
      nodejs_eventloop_lag_p99_seconds: 'gauge',
      nodejs_heap_size_used_bytes: 'gauge',
      nodejs_gc_duration_seconds: 'histogram',
    });
    expect(m.matching('process_cpu_user_seconds_total')).toHaveLength(1);
    const names = [...m.types.keys()];
    expect(names.filter((k) => /^fraudscore_(process|nodejs)_/.test(k))).toEqual([]);
    // Everything else is the application's own, prefixed.
    expect(names.filter((k) => !/^(fraudscore|process|nodejs)_/.test(k))).toEqual([]);
  });

  it('counts requests, decisions and stages exactly', async () => {
    expect((await s.app.inject('/v1/nothing/42')).statusCode).toBe(404);
    const m = await scrape(s);
    // Unknown paths share one label value, so scanners cannot blow up the series count.
    expect(
      m.value('fraudscore_http_request_duration_seconds_count', {
        route: 'unmatched',
        method: 'GET',
        status_code: '404',
      }),
    ).toBe(1);
    const http = { route: '/v1/score', method: 'POST', status_code: '200' };
    expect(m.value('fraudscore_http_request_duration_seconds_count', http)).toBe(SINGLE + 1);
    expect(
      m.value('fraudscore_http_request_duration_seconds_count', { ...http, route: '/v1/score/batch' }),
    ).toBe(1);
    expect(m.value('fraudscore_http_request_duration_seconds_bucket', { ...http, le: '+Inf' })).toBe(
      SINGLE + 1,
    );
    expect(m.sum('fraudscore_decisions_total')).toBe(SINGLE + BATCH);
    expect(m.sum('fraudscore_decisions_total', { model_version: '1' })).toBe(SINGLE + BATCH);
    for (const s of m.matching('fraudscore_decisions_total'))
      expect(s.labels.decision).toMatch(/^(approve|review|decline)$/);
    // One observation per scoring call that did any work: each single request, the batch, not the retry.
    for (const stage of ['features', 'inference', 'ensemble', 'total'])
      expect(m.value('fraudscore_scoring_stage_duration_seconds_count', { stage })).toBe(SINGLE + 1);
    expect(m.value('fraudscore_score_count', { model_version: '1' })).toBe(SINGLE + BATCH);
    // Rows through ONNX: the active version's and the shadow's.
    expect(m.sum('fraudscore_inference_batch_size_sum')).toBe(2 * (SINGLE + BATCH));
  });

  it('exports shadow scores under the shadow version, which never decides', async () => {
    const m = await scrape(s);
    expect(m.value('fraudscore_score_count', { model_version: '2' })).toBe(SINGLE + BATCH);
    expect(m.sum('fraudscore_decisions_total', { model_version: '2' })).toBe(0);
    expect(m.value('fraudscore_score_bucket', { model_version: '2', le: '+Inf' })).toBe(SINGLE + BATCH);
  });

  it('names the versions serving, the build and the model loads', async () => {
    let m = await scrape(s);
    expect(m.matching('fraudscore_model_info').map((x) => x.labels)).toEqual(
      expect.arrayContaining([
        { name: 'fraudscore', version: '1', role: 'active' },
        { name: 'fraudscore', version: '2', role: 'shadow' },
      ]),
    );
    expect(m.value('fraudscore_model_info', { role: 'active' })).toBe(1);
    expect(m.matching('fraudscore_model_info', { role: 'canary' })).toEqual([]);
    const build = buildInfo();
    expect(m.value('fraudscore_build_info', build)).toBe(1);
    expect(build.version).toBe(JSON.parse(await readFile('package.json', 'utf8')).version);
    expect(m.value('fraudscore_model_loads_total', { outcome: 'success' })).toBe(2);

    await writeFile(join(await copyModelVersion(dir, '2', '3'), 'mlp.onnx'), 'corrupt');
    const refused = await s.app.inject({
      method: 'PUT',
      url: '/admin/models/fraudscore/canary',
      headers: auth,
      payload: { version: '3', percent: 10 },
    });
    expect(refused.statusCode).toBe(422);
    const canary = await s.app.inject({
      method: 'PUT',
      url: '/admin/models/fraudscore/canary',
      headers: auth,
      payload: { version: '2', percent: 10 },
    });
    expect(canary.statusCode).toBe(409); // 2 is the shadow
    await s.app.inject({ method: 'DELETE', url: '/admin/models/fraudscore/shadow', headers: auth });
    await s.app.inject({
      method: 'PUT',
      url: '/admin/models/fraudscore/canary',
      headers: auth,
      payload: { version: '2', percent: 10 },
    });
    m = await scrape(s);
    expect(m.value('fraudscore_model_loads_total', { outcome: 'failure' })).toBe(1);
    // Clearing the shadow released version 2; the canary loaded it again.
    expect(m.value('fraudscore_model_loads_total', { outcome: 'success' })).toBe(3);
    expect(m.value('fraudscore_model_info', { role: 'canary' })).toBe(1);
    expect(m.matching('fraudscore_model_info', { role: 'canary' })[0]!.labels.version).toBe('2');
    expect(m.matching('fraudscore_model_info', { role: 'shadow' })).toEqual([]);
  });
});

describe('metrics when the feature store fails', () => {
  it('counts defaulted features and degraded responses', async () => {
    const down = () => Promise.reject(new Error('connection refused'));
    const failing: FeatureStore = {
      kind: 'broken',
      apply: down,
      summarize: down,
      read: down,
      ping: down,
      close: async () => {},
    };
    const s = await createService(loadConfig({ MODEL_DIR: FIXTURES }), {
      logger: silentLogger(),
      store: failing,
    });
    try {
      const N = 7;
      for (let i = 0; i < N; i++) {
        const r = await s.app.inject({
          method: 'POST',
          url: '/v1/score',
          payload: transaction({
            id: `d${i}`,
            t: Date.parse('2018-05-01T10:00:00Z'),
            customer_id: 'C',
            terminal_id: 'T',
            amount: 10,
            fraud: false,
          }),
        });
        expect(r.json()).toMatchObject({ degraded: true, degraded_reasons: ['features_unavailable'] });
      }
      const m = await scrape(s);
      expect(m.value('fraudscore_degraded_total', { reason: 'features_unavailable' })).toBe(N);
      const defaulted = m.matching('fraudscore_feature_defaulted_total');
      const windowFeatures = s.registry
        .active()!
        .featureSet.definition.features.filter((f) => f.kind === 'window');
      expect(defaulted.map((d) => d.labels.feature).sort()).toEqual(windowFeatures.map((f) => f.name).sort());
      for (const d of defaulted) expect(d.value).toBe(N);
      expect(m.sum('fraudscore_decisions_total')).toBe(N);
    } finally {
      await s.close();
    }
  });
});

/** Quantile edges (5 %, 10 %, … 95 %) of `values`, deduplicated, with counts per bin: two open outer bins. */
function histogram(values: readonly number[]): Histogram {
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  const edges = [...new Set(Array.from({ length: 19 }, (_, i) => q((i + 1) / 20)))];
  if (edges.length < 2) edges.push(edges[0]! + 1);
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (const v of values) counts[binIndex(edges, v)]!++;
  return { edges, counts };
}

interface Traffic {
  readonly results: { score: number; features: Record<string, number>; degraded: boolean }[];
}

/** Applies the transactions and their fraud labels as events, then scores all of them with explanations. */
async function replay(s: Service, txs: readonly GeneratedTx[], amountFactor = 1): Promise<Traffic> {
  const events = txs.flatMap((tx) => {
    const t = transaction(tx, amountFactor);
    const label = {
      type: 'label',
      transaction_id: t.transaction_id,
      customer_id: t.customer_id,
      terminal_id: t.terminal_id,
      transaction_timestamp: t.timestamp,
      is_fraud: true,
    };
    return tx.fraud ? [{ type: 'transaction', ...t }, label] : [{ type: 'transaction', ...t }];
  });
  for (let i = 0; i < events.length; i += 5_000) {
    const r = await s.app.inject({
      method: 'POST',
      url: '/v1/events',
      payload: { events: events.slice(i, i + 5_000) },
    });
    expect(r.json()).toMatchObject({ rejected: [] });
  }
  const results: Traffic['results'] = [];
  for (let i = 0; i < txs.length; i += 1_000) {
    const r = await s.app.inject({
      method: 'POST',
      url: '/v1/score/batch?explain=true',
      payload: { transactions: txs.slice(i, i + 1_000).map((t) => transaction(t, amountFactor)) },
    });
    expect(r.statusCode).toBe(200);
    results.push(...r.json().results);
  }
  expect(results.filter((r) => r.degraded)).toEqual([]);
  return { results };
}

describe('PSI of live traffic against the training reference', () => {
  const traffic = (seed: number) =>
    generateTransactions({ seed, days: 21, customers: 400, terminals: 150, perDay: 300 });
  const scoring = (env: Record<string, string>) =>
    createService(loadConfig({ REQUEST_DEADLINE_MS: '10000', ...env }), { logger: silentLogger() });
  let dir: string;
  const tmp = tempDirs();
  let referenceRows = 0;
  let edges: Record<string, number> = {};
  const show = (d: { rows: number; score: number; features: Record<string, number> }) =>
    JSON.stringify({
      ...d,
      referenceRows,
      score: Number(d.score.toFixed(4)),
      features: Object.fromEntries(Object.entries(d.features).map(([k, v]) => [k, Number(v.toFixed(4))])),
    });

  beforeAll(async () => {
    // Reference from traffic A, computed by the service itself on the fixture model.
    const a = await scoring({ MODEL_DIR: FIXTURES, MODEL_VERSION: '2' });
    let reference: Traffic;
    try {
      reference = await replay(a, traffic(1));
    } finally {
      await a.close();
    }
    referenceRows = reference.results.length;
    dir = await tmp('psi-models-');
    await mkdir(join(dir, 'fraudscore'));
    await cp(join(FIXTURES, 'fraudscore/2'), join(dir, 'fraudscore/2'), { recursive: true });
    const path = join(dir, 'fraudscore/2/manifest.json');
    const manifest = JSON.parse(await readFile(path, 'utf8'));
    manifest.reference = {
      ...manifest.reference,
      rows: reference.results.length,
      features: Object.fromEntries(
        (manifest.inputs as string[]).map((name) => [
          name,
          histogram(reference.results.map((r) => r.features[name]!)),
        ]),
      ),
      score: histogram(reference.results.map((r) => r.score)),
    };
    await writeFile(path, JSON.stringify(manifest, null, 2));
    edges = Object.fromEntries(
      Object.entries(manifest.reference.features as Record<string, Histogram>).map(([k, h]) => [
        k,
        h.edges.length,
      ]),
    );
  }, 60_000);

  async function drift(txs: GeneratedTx[], amountFactor = 1) {
    const s = await scoring({ MODEL_DIR: dir, PSI_WINDOW: String(txs.length) });
    try {
      expect(s.registry.active()?.id).toBe('fraudscore@2');
      await replay(s, txs, amountFactor);
      const m = await scrape(s);
      const features = Object.fromEntries(
        m.matching('fraudscore_feature_psi', { model_version: '2' }).map((x) => [x.labels.feature!, x.value]),
      );
      return { rows: txs.length, score: m.value('fraudscore_score_psi', { model_version: '2' }), features };
    } finally {
      await s.close();
    }
  }

  it('stays below 0.05 for every feature on traffic from the training distribution', async () => {
    const b = await drift(traffic(2));
    console.log('PSI, traffic B (same distribution):', show(b));
    // The traffic exercises the velocity features: a constant feature would pass any PSI check.
    for (const f of [
      'TX_AMOUNT',
      'CUSTOMER_ID_NB_TX_30DAY_WINDOW',
      'TERMINAL_ID_NB_TX_7DAY_WINDOW',
      'TERMINAL_ID_RISK_30DAY_WINDOW',
      'CUSTOMER_ID_SECONDS_SINCE_PREV_TX',
    ])
      expect(edges[f], f).toBeGreaterThanOrEqual(8);
    expect(Object.keys(b.features)).toHaveLength(18);
    for (const [feature, value] of Object.entries(b.features))
      expect({ feature, psi: value < 0.05 }).toEqual({ feature, psi: true });
    expect(b.score).toBeLessThan(0.05);
  }, 30_000);

  it('rises above 0.2 for TX_AMOUNT, and moves for the score, when amounts triple', async () => {
    const c = await drift(traffic(3), 3);
    console.log('PSI, traffic C (amounts x3):', show(c));
    expect(c.features.TX_AMOUNT).toBeGreaterThan(0.2);
    expect(c.score).toBeGreaterThan(0.1);
  }, 30_000);
});
