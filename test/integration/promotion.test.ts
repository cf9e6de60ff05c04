/**
 * Issue 19 end to end, on generated data small enough for CI: the history's transactions and fraud labels go
 * through Kafka; `fraudscore retrain` builds version 1, then version 2 gated against it (eligible); two replicas
 * on the real Redis run the promotion policy. As the scored transactions' labels come back through the labels
 * topic, the policy puts 2 in shadow, then in canary (50 %), then makes it active; a deliberately worse version
 * (the test fixture model, given an eligible card: offline gates can miss what live traffic shows) goes to shadow
 * and is rolled back automatically. Each step is checked in the audit log and in the shared serving state.
 *
 * The service clock moves a day ahead at each stage: the policy judges a stage on the decisions made from the
 * first whole UTC day after it began (the decision log counts per day), as over the days a real stage lasts.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { DAY_MS } from '../../src/domain/features/time.js';
import type { ServingState } from '../../src/domain/models/serving-state.js';
import type { Clock } from '../../src/ports/clock.js';
import { retrainFromKafka } from '../../src/wiring/jobs.js';
import { createService, type Service } from '../../src/wiring/service.js';
import { createTopics, uniqueTopics } from '../helpers/kafka.js';
import { captureLogger, type LogLine } from '../helpers/logger.js';
import { trainingModule } from '../helpers/python.js';
import { LENIENT_GATE, testRetrain } from '../helpers/retrain.js';
import { REPO_ROOT, requireKafka, requireRedis, uniqueName } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const MODEL = 'fraudscore';
const ADMIN = 'promotion-admin-token-0123456';
const EVENTS = 'promotion-events-token-0123456';

interface Row {
  transaction_id: string;
  timestamp: string;
  customer_id: string;
  terminal_id: string;
  amount: number;
  fraud: boolean;
}

/** The generator's CSV (handbook layout, no quoting). */
async function readRows(path: string): Promise<Row[]> {
  const [header, ...lines] = (await readFile(path, 'utf8')).trim().split('\n');
  const col = Object.fromEntries(header!.split(',').map((c, i) => [c, i]));
  return lines.map((line) => {
    const f = line.split(',');
    return {
      transaction_id: `pe-${f[col.TRANSACTION_ID!]}`,
      timestamp: `${f[col.TX_DATETIME!]!.replace(' ', 'T')}Z`,
      customer_id: f[col.CUSTOMER_ID!]!,
      terminal_id: f[col.TERMINAL_ID!]!,
      amount: Number(f[col.TX_AMOUNT!]),
      fraud: f[col.TX_FRAUD!] === '1',
    };
  });
}

const day = (r: Row) => r.timestamp.slice(0, 10);
const transactionOf = ({ fraud: _, ...t }: Row) => t;
const labelOf = (r: Row, labeledAt: string) => ({
  transaction_id: r.transaction_id,
  customer_id: r.customer_id,
  terminal_id: r.terminal_id,
  transaction_timestamp: r.timestamp,
  is_fraud: r.fraud,
  labeled_at: labeledAt,
});

describe('retrain → gate → promotion policy, through Kafka and Redis (issue 19)', () => {
  let dir: string;
  let models: string;
  let a: Service;
  let b: Service;
  let kafka: Kafka;
  let producer: Producer;
  let rows: Row[];
  const topics = uniqueTopics('promotion');
  const logs: LogLine[] = [];
  let offset = 0;
  /** The services' wall clock: real time plus whole days the test moves it ahead. */
  const clock: Clock = { now: () => Date.now() + offset, monotonic: () => performance.now() };

  const produce = async (topic: string, messages: { customer_id: string }[]) => {
    for (let i = 0; i < messages.length; i += 1_000)
      await producer.send({
        topic,
        messages: messages.slice(i, i + 1_000).map((m) => ({ key: m.customer_id, value: JSON.stringify(m) })),
      });
  };
  const consumed = async (topic: string) => {
    const m = await a.promRegistry.getSingleMetric('fraudscore_events_total')!.get();
    return m.values.filter((v) => v.labels.topic === topic).reduce((s, v) => s + v.value, 0);
  };
  const state = async (s: Service = a): Promise<ServingState> => {
    return (await listed(s)).fleet.desired;
  };
  const listed = async (s: Service) => {
    const r = await s.app.inject({ url: '/admin/models', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(r.statusCode, r.body).toBe(200);
    return r.json().models.find((m: { name: string }) => m.name === MODEL);
  };
  /** `fraudscore retrain --from-kafka --until <day>`: the history as the topics hold it. */
  const retrain = (until: string, brokers: string[]) =>
    retrainFromKafka({
      brokers,
      topics: { transactions: topics.transactions, labels: topics.labels },
      ...testRetrain(),
      until,
      modelDir: models,
      gate: LENIENT_GATE,
    });

  beforeAll(async () => {
    const { brokers } = await requireKafka();
    const { url } = await requireRedis();
    dir = await mkdtemp(join(tmpdir(), 'promotion-'));
    models = join(dir, 'models');
    const raw = join(dir, 'raw.csv');
    await trainingModule('generate', [
      ...['--days', '68', '--customers', '600', '--terminals', '1200', '--seed', '3', '--output', raw],
    ]);
    rows = await readRows(raw);
    kafka = new Kafka({ clientId: 'promotion-test', brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await createTopics(admin, topics, 2);
    await admin.disconnect();
    producer = kafka.producer();
    await producer.connect();
    // The history up to 2018-06-01: every transaction, and the frauds' labels a day after each.
    const history = rows.filter((r) => day(r) <= '2018-06-01');
    await produce(topics.transactions, history.map(transactionOf));
    await produce(
      topics.labels,
      history
        .filter((r) => r.fraud)
        .map((r) => labelOf(r, new Date(Date.parse(r.timestamp) + DAY_MS).toISOString())),
    );

    expect(await retrain('2018-05-25', brokers)).toMatchObject({ version: '1', verdict: 'eligible' });
    const v2 = await retrain('2018-06-01', brokers);
    expect(v2).toMatchObject({
      version: '2',
      verdict: 'eligible',
      champion: { version: '1' },
    });
    const card = JSON.parse(await readFile(join(models, MODEL, '2', 'manifest.json'), 'utf8')).card;
    expect(card.data.fingerprint.source).toMatchObject({ kind: 'kafka', topics: { labels: topics.labels } });

    const env = {
      MODEL_DIR: models,
      MODEL_VERSION: '1',
      REQUIRE_MODEL_CARD: 'true',
      ADMIN_TOKEN: ADMIN,
      EVENTS_TOKEN: EVENTS,
      REDIS_URL: url,
      REDIS_KEY_PREFIX: uniqueName('promotion'),
      // Answers, not latency, are under test: a busy machine must not degrade them.
      REQUEST_DEADLINE_MS: '20000',
      BATCH_DEADLINE_PER_TRANSACTION_MS: '100',
      BATCH_DEADLINE_MAX_MS: '60000',
      CONTROL_POLL_MS: '100',
      CONTROL_HEARTBEAT_MS: '200',
      MAX_FEATURE_STALENESS_MS: '0',
      PERFORMANCE_MIN_FRAUDS: '10',
      PROMOTION_POLICY: 'true',
      // The test ticks both replicas' policies itself once a stage's labels are all in: a timer's judgement on
      // half of them would be a different (and valid) decision.
      PROMOTION_INTERVAL_MS: '3600000',
      PROMOTION_CANARY_STEPS: '50',
      PROMOTION_MIN_FRAUDS: '20',
      // The live comparison is under test here; the PSI alarm is in the unit test.
      PROMOTION_MAX_SCORE_PSI: '1000',
      LOG_LEVEL: 'info',
    };
    a = await createService(
      loadConfig({
        ...env,
        KAFKA_BROKERS: brokers.join(','),
        WORKER_IN_PROCESS: 'true',
        KAFKA_TOPIC_TRANSACTIONS: topics.transactions,
        KAFKA_TOPIC_LABELS: topics.labels,
        KAFKA_TOPIC_DEAD_LETTER: topics.deadLetter,
        KAFKA_GROUP_ID: uniqueName('promotion-group'),
      }),
      { clock, logger: captureLogger(logs, 'info') },
    );
    b = await createService(loadConfig(env), { clock, logger: captureLogger(logs, 'info') });
    await waitFor(
      async () => (await consumed(topics.transactions)) === history.length,
      120_000,
      'the worker to apply the history',
    );
  }, 600_000);

  afterAll(async () => {
    await producer?.disconnect();
    await a?.close();
    await b?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /**
   * The next day of a stage (its evidence starts with the first whole UTC day after it began): scores the days'
   * transactions through both replicas, then sends their labels through Kafka.
   */
  const stage = async (from: string, to: string) => {
    offset += DAY_MS;
    const txs = rows.filter((r) => day(r) >= from && day(r) <= to);
    for (let i = 0, k = 0; i < txs.length; i += 250, k++) {
      const r = await (k % 2 ? b : a).app.inject({
        method: 'POST',
        url: '/v1/score/batch',
        payload: { transactions: txs.slice(i, i + 250).map(transactionOf) },
        headers: { authorization: `Bearer ${EVENTS}` },
      });
      expect(r.statusCode, r.body).toBe(200);
      for (const x of r.json().results) expect(x.degraded).toBe(false);
    }
    await Promise.all([a.flushDecisions(), b.flushDecisions()]);
    const before = await consumed(topics.labels);
    const labelledAt = new Date(clock.now()).toISOString();
    await produce(
      topics.labels,
      txs.map((r) => labelOf(r, labelledAt)),
    );
    await waitFor(
      async () => (await consumed(topics.labels)) >= before + txs.length,
      60_000,
      'the labels to be joined',
    );
    return txs;
  };
  /** Both replicas judge at once, as their timers would: one of them makes the transition. */
  const judged = async () => {
    const results = await Promise.all([a.promotion!.tick(MODEL), b.promotion!.tick(MODEL)]);
    expect(
      results.filter((r) => r.kind === 'transition'),
      JSON.stringify(results),
    ).toHaveLength(1);
    await waitFor(
      async () => (await listed(a)).fleet.converged === true,
      20_000,
      'both replicas to apply the state',
    );
    return state();
  };
  const audit = () => logs.filter((l) => l.audit === 'promotion');

  it('puts the eligible version in shadow, then canary, then active as labelled outcomes accumulate', async () => {
    let s = await judged();
    expect(s).toMatchObject({ active: '1', promotion: { candidate: { version: '2', stage: 'shadow' } } });
    expect(audit()).toHaveLength(1);

    const shadowed = await stage('2018-06-02', '2018-06-03');
    expect(shadowed.filter((r) => r.fraud).length).toBeGreaterThanOrEqual(40);
    s = await judged();
    expect(s).toMatchObject({
      active: '1',
      canary: { version: '2', percent: 50 },
      promotion: { candidate: { version: '2', stage: 'canary', step: 0 } },
    });
    expect(s.shadow).toBeUndefined();
    const toCanary = s.promotion!.history.at(-1)!;
    expect(toCanary).toMatchObject({ from: 'shadow', to: 'canary', percent: 50 });
    expect(toCanary.evidence).toMatchObject({ comparison: { champion: '1', challenger: '2', paired: true } });
    expect(['no_significant_difference', 'better']).toContain(
      (toCanary.evidence.comparison as { verdict: string }).verdict,
    );
    expect(toCanary.evidence.stage_frauds).toBeGreaterThanOrEqual(20);

    await stage('2018-06-04', '2018-06-05');
    s = await judged();
    expect(s).toMatchObject({ active: '2', previous: '1' });
    expect(s.canary).toBeUndefined();
    expect(s.promotion!.candidate).toBeUndefined();
    const toActive = s.promotion!.history.at(-1)!;
    expect(toActive).toMatchObject({ from: 'canary', to: 'active' });
    expect(toActive.evidence).toMatchObject({
      comparison: { champion: '1', challenger: '2', paired: false },
    });
    await waitFor(() => b.registry.active(MODEL)?.version === '2', 20_000, 'replica b to serve version 2');
  }, 600_000);

  it('rolls a worse version back automatically and never picks it again', async () => {
    // The fixture model (trained on other data) as version 3, with version 2's card: its offline gate passed.
    const v3 = join(models, MODEL, '3');
    await cp(join(REPO_ROOT, 'test/fixtures/models', MODEL, '1'), v3, { recursive: true });
    const card = JSON.parse(await readFile(join(models, MODEL, '2', 'manifest.json'), 'utf8')).card;
    const manifest = JSON.parse(await readFile(join(v3, 'manifest.json'), 'utf8'));
    await writeFile(join(v3, 'manifest.json'), JSON.stringify({ ...manifest, version: '3', card }));

    expect(await judged()).toMatchObject({ active: '2', shadow: { version: '3' } });
    await stage('2018-06-06', '2018-06-07');
    const s = await judged();
    expect(s).toMatchObject({ active: '2', previous: '1' });
    expect(s.shadow).toBeUndefined();
    const back = s.promotion!.history.at(-1)!;
    expect(back).toMatchObject({ version: '3', from: 'shadow', to: 'rolled_back' });
    expect(back.reason).toMatch(/^worse than 2: AUC difference -/);
    expect(back.evidence).toMatchObject({ comparison: { champion: '2', challenger: '3', verdict: 'worse' } });

    // Every step, in order, in the state every replica reads and in the audit log.
    const steps = s.promotion!.history.map((t) => `${t.version}:${t.from}>${t.to}`);
    expect(steps).toEqual([
      '2:eligible>shadow',
      '2:shadow>canary',
      '2:canary>active',
      '3:eligible>shadow',
      '3:shadow>rolled_back',
    ]);
    expect(audit().map((l) => `${l.version}:${l.from}>${l.to}`)).toEqual(steps);
    expect(await state(b)).toEqual(s);
    await waitFor(
      async () => (await listed(b)).fleet.converged === true,
      20_000,
      'both replicas to serve the state',
    );
    // Ticks go on, and 3 is not picked again.
    const ticks = await a.promotion!.tick(MODEL);
    expect(ticks).toEqual({ kind: 'idle', reason: 'no eligible version newer than the active one' });
  }, 600_000);
});
