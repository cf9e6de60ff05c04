/**
 * Issue 18, closing the loop: a handbook-style history through /v1/events with its labels, a test week scored
 * through the API by two replicas with version 1 active and a copy of it as shadow, then the week's labels
 * (frauds and explicit non-frauds) half through /v1/events and half through the labels topic. The performance
 * endpoint's AUC and AP per version equal scikit-learn's on the same scores and labels within 0.001, the
 * comparison finds no significant difference (p ≥ 0.05), and both replicas report the same numbers; every label
 * redelivered and 10 corrected give the counts of a single delivery of the final labels; a deliberately worse
 * challenger (the test fixture model as shadow) comes out `worse` with p < 0.05. On the real Redis, and on the
 * embedded store (two replicas sharing one process's stores).
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/adapters/clock/system-clock.js';
import { MemoryControlPlane } from '../../src/adapters/memory/memory-control-plane.js';
import { MemoryDecisionLog } from '../../src/adapters/memory/memory-decision-log.js';
import { MemoryFeatureStore } from '../../src/adapters/memory/memory-store.js';
import { loadConfig } from '../../src/config.js';
import { DAY_MS } from '../../src/domain/features/time.js';
import { createService, type Service, type ServiceOptions } from '../../src/wiring/service.js';
import { loadFeatures } from '../../src/wiring/stores.js';
import { rng } from '../helpers/generate.js';
import { createTopics, uniqueTopics } from '../helpers/kafka.js';
import { captureLogger, type LogLine } from '../helpers/logger.js';
import { copyModelVersion } from '../helpers/models.js';
import { trainingPython } from '../helpers/python.js';
import { REPO_ROOT, requireKafka, requireRedis, uniqueName } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const ADMIN = 'live-performance-admin-token-0123';
const EVENTS = 'live-performance-events-token-0123';
const MODEL = 'fraudscore';

interface Tx {
  transaction_id: string;
  timestamp: string;
  customer_id: string;
  terminal_id: string;
  amount: number;
  fraud: boolean;
}

/**
 * Handbook-style transactions (Le Borgne et al.): customers spend around their own mean amount at random
 * terminals; frauds are amounts over 220 (scenario 1) and every transaction at a terminal for 28 days after it
 * is compromised (scenario 2, one terminal every other day).
 */
function handbookStyle(seed: number, start: number, days: number, perDay: number, tag: string): Tx[] {
  const r = rng(seed);
  const customers = Array.from({ length: 300 }, () => 5 + r() * 95);
  const compromised = new Map<number, number>();
  const out: Tx[] = [];
  for (let d = 0; d < days; d++) {
    if (d % 2 === 0) compromised.set(Math.floor(r() * 200), start + (d + 28) * DAY_MS);
    for (let k = 0; k < perDay; k++) {
      const t = start + d * DAY_MS + Math.floor(r() * 86_400) * 1000;
      const c = Math.floor(r() * customers.length);
      const m = Math.floor(r() * 200);
      const mean = customers[c]!;
      const big = r() < 0.01;
      const amount = big ? 220 + r() * 500 : Math.max(0.5, mean + (r() - 0.5) * mean);
      const until = compromised.get(m);
      out.push({
        transaction_id: `${tag}-${d}-${k}`,
        timestamp: new Date(t).toISOString(),
        customer_id: `C${c}`,
        terminal_id: `T${m}`,
        amount: Math.round(amount * 100) / 100,
        fraud: big || (until !== undefined && t < until && t >= until - 28 * DAY_MS),
      });
    }
  }
  return out.sort((a, b) => a.timestamp.localeCompare(b.timestamp));
}

const asTransaction = ({ fraud: _fraud, ...t }: Tx) => t;
const labelOf = (t: Tx, fraud = t.fraud, hoursLater = 0) => ({
  transaction_id: t.transaction_id,
  customer_id: t.customer_id,
  terminal_id: t.terminal_id,
  transaction_timestamp: t.timestamp,
  is_fraud: fraud,
  labeled_at: new Date(Date.now() + hoursLater * 3_600_000).toISOString(),
});

/** scikit-learn's AUC and AP of each score vector (fraudscore_training.performance metrics). */
async function sklearn(dir: string, y: number[], scores: Record<string, number[]>) {
  const input = join(dir, `scores-${uniqueName('s')}.json`);
  await writeFile(input, JSON.stringify({ y, scores }));
  const { stdout } = await run(
    trainingPython(),
    ['-m', 'fraudscore_training.performance', 'metrics', '--input', input],
    { cwd: join(REPO_ROOT, 'training') },
  );
  return JSON.parse(stdout) as Record<string, { auc: number; average_precision: number }>;
}

interface VersionReport {
  version: string;
  role: string;
  labelled: number;
  frauds: number;
  explicit: number;
  matured: number;
  auc: number;
  average_precision: number;
  outcomes_by_decision: Record<string, { fraud: number; not_fraud: number }>;
}
interface Report {
  unscored_labels: number;
  versions: VersionReport[];
  comparison?: {
    champion: string;
    challenger: string;
    paired: boolean;
    n: number;
    frauds: number;
    p_value: number;
    verdict: string;
    auc_difference: number;
  };
}

for (const backend of ['redis', 'embedded'] as const) {
  describe(`live performance from delayed labels, two replicas (${backend})`, () => {
    let dir: string;
    let a: Service;
    let b: Service;
    let producer: Producer;
    let kafka: Kafka;
    const topics = uniqueTopics(`perf-${backend}`);
    const labelsTopic = topics.labels;
    const logs: LogLine[] = [];
    const history = handbookStyle(18, Date.parse('2018-07-01T00:00:00Z'), 28, 400, `${backend}-h`);
    const week = handbookStyle(19, Date.parse('2018-07-29T00:00:00Z'), 7, 300, `${backend}-w`);
    const week2 = handbookStyle(20, Date.parse('2018-08-05T00:00:00Z'), 7, 300, `${backend}-x`);
    /** Scores by version and transaction id: the answers (active) and the shadow audit lines. */
    const scores = new Map<string, Map<string, number>>();
    const decisions = new Map<string, string>();

    beforeAll(async () => {
      ({ brokers: [] }) as { brokers: string[] };
      const { brokers } = await requireKafka();
      dir = await mkdtemp(join(tmpdir(), 'perf-'));
      const models = join(dir, 'models');
      await cp(join(REPO_ROOT, 'models/fraudscore/1'), join(models, MODEL, '1'), { recursive: true });
      await copyModelVersion(models, '1', '2');
      // The deliberately worse challenger: the test fixture model, as version 3.
      await cp(join(REPO_ROOT, 'test/fixtures/models/fraudscore/1'), join(models, MODEL, '3'), {
        recursive: true,
      });
      const manifest = join(models, MODEL, '3', 'manifest.json');
      await writeFile(
        manifest,
        JSON.stringify({ ...JSON.parse(await readFile(manifest, 'utf8')), version: '3' }),
      );

      const env: Record<string, string> = {
        MODEL_DIR: models,
        MODEL_VERSION: '1',
        ADMIN_TOKEN: ADMIN,
        EVENTS_TOKEN: EVENTS,
        // Answers, not latency, are under test: a busy machine must not degrade them.
        REQUEST_DEADLINE_MS: '20000',
        BATCH_DEADLINE_PER_TRANSACTION_MS: '100',
        BATCH_DEADLINE_MAX_MS: '60000',
        CONTROL_POLL_MS: '100',
        CONTROL_HEARTBEAT_MS: '200',
        MAX_FEATURE_STALENESS_MS: '0',
        LOG_LEVEL: 'info',
      };
      const shared: ServiceOptions = {};
      if (backend === 'redis') {
        const { url } = await requireRedis();
        Object.assign(env, { REDIS_URL: url, REDIS_KEY_PREFIX: uniqueName('perf') });
      } else {
        const config = loadConfig(env);
        const limit = { clock: systemClock, maxFutureMs: config.MAX_EVENT_FUTURE_MS };
        Object.assign(shared, {
          store: new MemoryFeatureStore(loadFeatures(config).retention, limit),
          control: new MemoryControlPlane(systemClock),
          decisionLog: new MemoryDecisionLog(systemClock, config.LABEL_HORIZON_DAYS * DAY_MS),
        });
      }
      const withKafka = {
        ...env,
        KAFKA_BROKERS: brokers.join(','),
        WORKER_IN_PROCESS: 'true',
        KAFKA_TOPIC_LABELS: topics.labels,
        KAFKA_TOPIC_TRANSACTIONS: topics.transactions,
        KAFKA_TOPIC_DEAD_LETTER: topics.deadLetter,
        KAFKA_GROUP_ID: uniqueName('perf-group'),
      };
      kafka = new Kafka({ clientId: 'perf-test', brokers, logLevel: logLevel.NOTHING });
      const admin = kafka.admin();
      await admin.connect();
      await createTopics(admin, topics, 2);
      await admin.disconnect();
      a = await createService(loadConfig(withKafka), { ...shared, logger: captureLogger(logs, 'info') });
      b = await createService(loadConfig(env), { ...shared, logger: captureLogger(logs, 'info') });
      producer = kafka.producer();
      await producer.connect();
    });

    afterAll(async () => {
      await producer?.disconnect();
      await a?.close();
      await b?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    const post = (s: Service, url: string, payload: object, token = EVENTS) =>
      s.app.inject({ method: 'POST', url, payload, headers: { authorization: `Bearer ${token}` } });
    const events = async (s: Service, list: object[]) => {
      for (let i = 0; i < list.length; i += 5_000) {
        const r = await post(s, '/v1/events', { events: list.slice(i, i + 5_000) });
        expect(r.statusCode, r.body).toBe(200);
        expect(r.json().rejected).toEqual([]);
      }
    };
    const report = async (s: Service, query = ''): Promise<Report> => {
      const r = await s.app.inject({
        url: `/admin/models/${MODEL}/performance${query}`,
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      expect(r.statusCode, r.body).toBe(200);
      return r.json();
    };
    const setShadow = async (version: string) => {
      const r = await a.app.inject({
        method: 'PUT',
        url: `/admin/models/${MODEL}/shadow`,
        payload: { version },
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      expect(r.statusCode, r.body).toBe(200);
      await waitFor(
        () => b.registry.serving().find((m) => m.name === MODEL)?.shadow?.version === version,
        20_000,
        `replica b to shadow with ${version}`,
      );
    };
    /** Scores the transactions in batches, alternately on each replica; keeps scores and decisions. */
    const score = async (txs: Tx[]) => {
      for (let i = 0, k = 0; i < txs.length; i += 250, k++) {
        const r = await post(k % 2 ? b : a, '/v1/score/batch', {
          transactions: txs.slice(i, i + 250).map(asTransaction),
        });
        expect(r.statusCode, r.body).toBe(200);
        for (const x of r.json().results as {
          transaction_id: string;
          score: number;
          decision: string;
          model: { version: string };
          degraded: boolean;
        }[]) {
          expect(x.degraded).toBe(false);
          const m = scores.get(x.model.version) ?? new Map();
          scores.set(x.model.version, m.set(x.transaction_id, x.score));
          decisions.set(x.transaction_id, x.decision);
        }
      }
      await Promise.all([a.flushDecisions(), b.flushDecisions()]);
      for (const line of logs.splice(0))
        if (line.audit === 'shadow') {
          const m = scores.get(String(line.model_version)) ?? new Map();
          scores.set(String(line.model_version), m.set(String(line.transaction_id), Number(line.score)));
        }
    };
    const produceLabels = async (labels: object[]) => {
      for (let i = 0; i < labels.length; i += 500)
        await producer.send({
          topic: labelsTopic,
          messages: labels.slice(i, i + 500).map((l) => ({
            key: (l as { customer_id: string }).customer_id,
            value: JSON.stringify(l),
          })),
        });
    };
    const labelsConsumed = async () => {
      const m = await a.promRegistry.getSingleMetric('fraudscore_events_total')!.get();
      return m.values.filter((v) => v.labels.topic === labelsTopic).reduce((s, v) => s + v.value, 0);
    };
    const expected = async (txs: Tx[], final: Map<string, boolean>, versions: string[]) => {
      const y = txs.map((t) => (final.get(t.transaction_id) ? 1 : 0));
      return sklearn(
        dir,
        y,
        Object.fromEntries(versions.map((v) => [v, txs.map((t) => scores.get(v)!.get(t.transaction_id)!)])),
      );
    };

    it('reports AUC and AP per version as scikit-learn, no significant difference, the same on both replicas', async () => {
      await events(a, [
        ...history.map((t) => ({ type: 'transaction', ...asTransaction(t) })),
        ...history.filter((t) => t.fraud).map((t) => ({ type: 'label', ...labelOf(t) })),
      ]);
      await setShadow('2');
      await score(week);
      expect(scores.get('1')!.size).toBe(week.length);
      expect(scores.get('2')!.size).toBe(week.length);
      const labels = week.map((t, i) => labelOf(t, t.fraud, i % 72));
      await events(
        b,
        labels.filter((_, i) => i % 2 === 0).map((l) => ({ type: 'label', ...l })),
      );
      await produceLabels(labels.filter((_, i) => i % 2 === 1));
      await waitFor(
        async () => (await report(a)).versions.find((v) => v.version === '1')?.labelled === week.length,
        60_000,
        'the labels topic to be joined',
      );
      const [ra, rb] = [await report(a), await report(b)];
      expect(rb).toEqual(ra);
      const final = new Map(week.map((t) => [t.transaction_id, t.fraud]));
      const want = await expected(week, final, ['1', '2']);
      const frauds = week.filter((t) => t.fraud).length;
      expect(frauds).toBeGreaterThanOrEqual(30);
      for (const v of ['1', '2']) {
        const got = ra.versions.find((x) => x.version === v)!;
        expect(got).toMatchObject({ labelled: week.length, frauds, explicit: week.length, matured: 0 });
        expect(Math.abs(got.auc - want[v]!.auc)).toBeLessThan(0.001);
        expect(Math.abs(got.average_precision - want[v]!.average_precision)).toBeLessThan(0.001);
      }
      expect(ra.versions.map((v) => [v.version, v.role])).toEqual([
        ['1', 'active'],
        ['2', 'shadow'],
      ]);
      expect(ra.comparison).toMatchObject({
        champion: '1',
        challenger: '2',
        paired: true,
        n: week.length,
        frauds,
        verdict: 'no_significant_difference',
      });
      expect(ra.comparison!.p_value).toBeGreaterThanOrEqual(0.05);
      // The history's labels found no decision: counted once each as unscored.
      expect(ra.unscored_labels).toBe(history.filter((t) => t.fraud).length);
    });

    it('every label redelivered and 10 corrected give the counts of one delivery of the final labels', async () => {
      const before = await report(a);
      const labels = week.map((t) => labelOf(t));
      const consumed = await labelsConsumed();
      await events(
        a,
        labels.filter((_, i) => i % 2 === 0).map((l) => ({ type: 'label', ...l })),
      );
      await produceLabels(labels.filter((_, i) => i % 2 === 1));
      await waitFor(
        async () => (await labelsConsumed()) >= consumed + labels.filter((_, i) => i % 2 === 1).length,
        60_000,
        'the redelivered labels to be consumed',
      );
      expect(await report(b)).toEqual(before);
      // 10 frauds were not: five corrections through the API, five through the topic, each delivered twice.
      const corrected = week.filter((t) => t.fraud).slice(0, 10);
      const fixes = corrected.map((t) => labelOf(t, false, 100));
      for (let twice = 0; twice < 2; twice++) {
        await events(
          b,
          fixes.slice(0, 5).map((l) => ({ type: 'label', ...l })),
        );
        await produceLabels(fixes.slice(5));
      }
      const final = new Map(week.map((t) => [t.transaction_id, t.fraud]));
      for (const t of corrected) final.set(t.transaction_id, false);
      const frauds = [...final.values()].filter(Boolean).length;
      await waitFor(
        async () => (await report(a)).versions.find((v) => v.version === '1')?.frauds === frauds,
        60_000,
        'the corrections through the topic',
      );
      const after = await report(a);
      expect(await report(b)).toEqual(after);
      const want = await expected(week, final, ['1', '2']);
      for (const v of ['1', '2']) {
        const got = after.versions.find((x) => x.version === v)!;
        const byDecision: Record<string, { fraud: number; not_fraud: number }> = {
          approve: { fraud: 0, not_fraud: 0 },
          review: { fraud: 0, not_fraud: 0 },
          decline: { fraud: 0, not_fraud: 0 },
        };
        for (const t of week)
          byDecision[decisions.get(t.transaction_id)!]![
            final.get(t.transaction_id) ? 'fraud' : 'not_fraud'
          ]++;
        if (v === '1') expect(got.outcomes_by_decision).toEqual(byDecision);
        expect(got).toMatchObject({ labelled: week.length, frauds, explicit: week.length });
        expect(Math.abs(got.auc - want[v]!.auc)).toBeLessThan(0.001);
        expect(Math.abs(got.average_precision - want[v]!.average_precision)).toBeLessThan(0.001);
      }
      expect(after.unscored_labels).toBe(before.unscored_labels);
    });

    it('a deliberately worse challenger (the fixture model as shadow) comes out worse, p < 0.05', async () => {
      await setShadow('3');
      await score(week2);
      expect(scores.get('3')!.size).toBe(week2.length);
      await events(
        b,
        week2.map((t) => ({ type: 'label', ...labelOf(t) })),
      );
      const r = await report(a);
      expect(await report(b)).toEqual(r);
      const final = new Map(week2.map((t) => [t.transaction_id, t.fraud]));
      const want = await expected(week2, final, ['3']);
      const v3 = r.versions.find((x) => x.version === '3')!;
      expect(Math.abs(v3.auc - want['3']!.auc)).toBeLessThan(0.001);
      expect(Math.abs(v3.average_precision - want['3']!.average_precision)).toBeLessThan(0.001);
      expect(r.comparison).toMatchObject({
        champion: '1',
        challenger: '3',
        paired: true,
        n: week2.length,
        verdict: 'worse',
      });
      expect(r.comparison!.p_value).toBeLessThan(0.05);
      expect(r.comparison!.auc_difference).toBeLessThan(0);
    });

    it('answers bad input with a clear 4xx', async () => {
      const get = (url: string) => a.app.inject({ url, headers: { authorization: `Bearer ${ADMIN}` } });
      expect((await get(`/admin/models/${MODEL}/performance?since=yesterday`)).statusCode).toBe(400);
      expect((await get(`/admin/models/${MODEL}/performance?until=2026-01-01`)).statusCode).toBe(400);
      expect((await get('/admin/models/Not A Name/performance')).statusCode).toBe(400);
      expect((await get('/admin/models/unknown/performance')).statusCode).toBe(404);
      expect((await a.app.inject(`/admin/models/${MODEL}/performance`)).statusCode).toBe(401);
      const tomorrow = new Date(Date.now() + DAY_MS).toISOString().slice(0, 10);
      expect((await report(a, `?since=${tomorrow}`)).versions.every((v) => v.labelled === 0)).toBe(true);
    });
  });
}
