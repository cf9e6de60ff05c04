import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createService, type Service } from '../../src/wiring/service.js';
import { silentLogger } from '../helpers/logger.js';
import { requireKafka, requireRedis, uniqueName } from '../helpers/services.js';
import { sleep } from '../helpers/wait.js';

const tx = (id: string, over: Record<string, unknown> = {}) => ({
  transaction_id: id,
  timestamp: '2018-08-09T10:00:00Z',
  customer_id: 'C-redis',
  terminal_id: 'T-redis',
  amount: 40,
  ...over,
});

describe('scoring against the real Redis, with decisions published to Kafka', () => {
  let s: Service;
  let brokers: string[];
  const decisionsTopic = uniqueName('decisions');
  const EVENTS_TOKEN = 'a-test-events-token-0123';

  beforeAll(async () => {
    const { url } = await requireRedis();
    ({ brokers } = await requireKafka());
    s = await createService(
      loadConfig({
        MODEL_DIR: 'test/fixtures/models',
        REDIS_URL: url,
        REDIS_KEY_PREFIX: uniqueName('score'),
        KAFKA_BROKERS: brokers.join(','),
        KAFKA_TOPIC_DECISIONS: decisionsTopic,
        EVENTS_TOKEN,
        // The test checks features and answers, not latency: a busy machine must not degrade them.
        REQUEST_DEADLINE_MS: '2000',
      }),
      { logger: silentLogger() },
    );
  });
  afterAll(() => s?.close());
  const post = (url: string, payload: unknown) =>
    s.app.inject({
      method: 'POST',
      url,
      payload: payload as object,
      headers: { authorization: `Bearer ${EVENTS_TOKEN}` },
    });

  it('is ready, applies events to Redis and scores with the velocity features they make', async () => {
    expect((await s.app.inject('/health/ready')).json().checks.feature_store).toEqual({ ok: true });
    const events = await post('/v1/events', {
      events: [
        { type: 'transaction', ...tx('r1', { timestamp: '2018-08-09T08:00:00Z', amount: 10 }) },
        { type: 'transaction', ...tx('r2', { timestamp: '2018-08-09T09:00:00Z', amount: 20 }) },
        { type: 'transaction', ...tx('r2', { timestamp: '2018-08-09T09:00:00Z', amount: 20 }) },
      ],
    });
    expect(events.json()).toMatchObject({ applied: 2, duplicates: 1 });
    const r = await post('/v1/score?explain=true', tx('r3', { amount: 30 }));
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ degraded: false, model: { version: '2' } });
    expect(r.json().features).toMatchObject({
      CUSTOMER_ID_NB_TX_1DAY_WINDOW: 3,
      CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW: 20,
      CUSTOMER_ID_SECONDS_SINCE_PREV_TX: 3600,
    });
    const batch = await post('/v1/score/batch?explain=true', {
      transactions: [tx('r4'), tx('r5', { customer_id: 'C-other' })],
    });
    expect(
      batch
        .json()
        .results.map((x: { features: Record<string, number> }) => x.features.CUSTOMER_ID_NB_TX_1DAY_WINDOW),
    ).toEqual([3, 1]);
  });

  it('publishes one audit record per decision to the decisions topic', async () => {
    await post('/v1/score', tx('d1'));
    await post('/v1/score', tx('d2'));
    const kafka = new Kafka({ clientId: 'decisions-reader', brokers, logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: uniqueName('decisions-reader') });
    const seen = new Map<string, { model_version: string; decision: string }>();
    const admin = kafka.admin();
    await admin.connect();
    // The service creates the topic at start-up; wait for it rather than race it.
    for (let i = 0; i < 100 && !(await admin.listTopics()).includes(decisionsTopic); i++) await sleep(100);
    await admin.disconnect();
    await consumer.connect();
    await consumer.subscribe({ topic: decisionsTopic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const r = JSON.parse(message.value!.toString());
        seen.set(r.transaction_id, r);
      },
    });
    const end = Date.now() + 30_000;
    while (!(seen.has('d1') && seen.has('d2')) && Date.now() < end) await sleep(100);
    await consumer.disconnect();
    expect(seen.get('d1')).toMatchObject({ model_version: '2', decision: expect.any(String) });
    expect(seen.has('d2')).toBe(true);
  });
});
