/**
 * Issue 15, item 5 (acceptance): Redis stops under a running worker. `fraudscore serve` with the in-process
 * worker (WORKER_IN_PROCESS) on a private redis-server (its own port; the shared Redis is never touched), events
 * flowing on unique topics. After the kill:
 *  - the lag gauge shows the backlog before any further commit, and keeps rising with it while the write waits;
 *  - with the service's wall clock moved 6 minutes on (a fake clock: nothing waits 5 minutes), the
 *    FraudscoreWorkerStalled and FraudscoreFeaturesStale expressions of the PrometheusRule, evaluated by the
 *    PromQL checker against the scraped samples, fire, and answers carry `features_stale` while still scored
 *    by the model;
 * and after Redis returns all of it clears. Everything asserted is what the service reports (metrics, answers,
 * committed offsets), never a client-side duration.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Admin, Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.js';
import type { Clock } from '../../src/ports/clock.js';
import { createService, type Service } from '../../src/wiring/service.js';
import { createTopics, uniqueTopics } from '../helpers/kafka.js';
import { silentLogger } from '../helpers/logger.js';
import { freePort } from '../helpers/net.js';
import { killPrivateRedis, startPrivateRedis } from '../helpers/redis.js';
import { requireKafka, uniqueName } from '../helpers/services.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { evaluate, parseExposition, type Sample } from '../unit/deploy/promql.js';

const MAX_STALENESS_MS = 60_000;
const JUMP_MS = 6 * 60_000;
const TARGET = { namespace: 'stall-test', pod: 'api-0', job: 'fraudscore-api' };

/** The alert expressions as shipped (k8s/components/monitoring/prometheusrule.yaml). */
async function alertExpr(name: string): Promise<string> {
  const doc = parse(await readFile('k8s/components/monitoring/prometheusrule.yaml', 'utf8')) as {
    spec: { groups: { rules: { alert?: string; expr: string }[] }[] };
  };
  const rule = doc.spec.groups.flatMap((g) => g.rules).find((r) => r.alert === name);
  if (!rule) throw new Error(`no alert ${name}`);
  return rule.expr;
}

describe('a worker whose Redis stops: lag, stalled alert, features_stale, and recovery', () => {
  const topics = uniqueTopics('stall');
  const groupId = uniqueName('stall-group');
  let offsetMs = 0;
  const clock: Clock = { now: () => Date.now() + offsetMs, monotonic: () => performance.now() };
  let dir: string;
  let port: number;
  let redis: ChildProcess | undefined;
  let service: Service;
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;
  let producing = false;
  let producerLoop: Promise<void> | undefined;
  let sent = 0;

  beforeAll(async () => {
    const { brokers } = await requireKafka();
    dir = await mkdtemp(join(tmpdir(), 'worker-stall-'));
    port = await freePort();
    redis = await startPrivateRedis(port, dir);
    kafka = new Kafka({ clientId: 'worker-stall-test', brokers, logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    await createTopics(admin, topics, 2);
    service = await createService(
      loadConfig({
        MODEL_DIR: 'test/fixtures/models',
        REDIS_URL: `redis://127.0.0.1:${port}`,
        REDIS_KEY_PREFIX: uniqueName('stall'),
        KAFKA_BROKERS: brokers.join(','),
        KAFKA_CLIENT_ID: 'worker-stall',
        KAFKA_GROUP_ID: groupId,
        KAFKA_TOPIC_TRANSACTIONS: topics.transactions,
        KAFKA_TOPIC_LABELS: topics.labels,
        KAFKA_TOPIC_DEAD_LETTER: topics.deadLetter,
        WORKER_IN_PROCESS: 'true',
        MAX_FEATURE_STALENESS_MS: String(MAX_STALENESS_MS),
        // Staleness is tested, not latency: a busy machine must not add features_timeout.
        REQUEST_DEADLINE_MS: '5000',
      }),
      { clock, logger: silentLogger() },
    );
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    producing = true;
    producerLoop = (async () => {
      while (producing) {
        const i = sent++;
        await producer.send({
          topic: topics.transactions,
          messages: [
            {
              key: `C${i % 7}`,
              value: JSON.stringify({
                transaction_id: `s${i}`,
                timestamp: new Date(Date.parse('2018-04-01T00:00:00Z') + i * 1000).toISOString(),
                customer_id: `C${i % 7}`,
                terminal_id: `T${i % 3}`,
                amount: 10 + (i % 50),
              }),
            },
          ],
        });
        await sleep(50);
      }
    })();
  });

  afterAll(async () => {
    producing = false;
    await producerLoop?.catch(() => {});
    await producer?.disconnect().catch(() => {});
    // The worker's writes wait for Redis: it must be back for the service to close.
    const down = !redis || redis.exitCode !== null || redis.signalCode !== null;
    if (down && dir) redis = await startPrivateRedis(port, dir).catch(() => undefined);
    await service?.close().catch(() => {});
    await admin?.deleteTopics({ topics: Object.values(topics) }).catch(() => {});
    await admin?.disconnect().catch(() => {});
    if (redis) await killPrivateRedis(redis);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  let lastScrape: Sample[] = [];
  const scrape = async (): Promise<Sample[]> => {
    const r = await service.app.inject('/metrics');
    lastScrape = parseExposition(r.body, TARGET);
    return lastScrape;
  };
  const values = (samples: Sample[], name: string) => samples.filter((s) => s.name === name);
  const total = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
    values(samples, name)
      .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((a, s) => a + s.value, 0);
  const alert = async (name: string) => {
    const v = evaluate(await alertExpr(name), await scrape(), { time: clock.now() / 1000 });
    if (v.type !== 'vector') throw new Error(`${name} is not a vector expression`);
    return v.series;
  };
  const committed = async () =>
    (await admin.fetchOffsets({ groupId, topics: [topics.transactions] }))[0]!.partitions
      .map((p) => `${p.partition}@${p.offset}`)
      .sort()
      .join(' ');
  let scored = 0;
  const score = async () => {
    const r = await service.app.inject({
      method: 'POST',
      url: '/v1/score',
      payload: {
        transaction_id: `q${scored++}`,
        timestamp: '2018-04-02T00:00:00Z',
        customer_id: 'C1',
        terminal_id: 'T1',
        amount: 25,
      },
    });
    expect(r.statusCode).toBe(200);
    return r.json() as {
      degraded: boolean;
      degraded_reasons?: string[];
      score: number;
      model: { version: string };
    };
  };

  it('reports the stall, scores with features_stale past the bound, and clears once Redis is back', async () => {
    const LAG = 'fraudscore_consumer_lag';
    // Healthy: the worker applies what flows in, nothing is stale, no alert.
    await waitFor(
      async () => total(await scrape(), 'fraudscore_events_total', { outcome: 'applied' }) >= 20,
      60_000,
      'the worker applying events',
    );
    await waitFor(
      async () =>
        values(await scrape(), 'fraudscore_consumer_lag').filter(
          (s) => s.labels.topic === topics.transactions,
        ).length === 2,
      30_000,
      'a fetch from both partitions',
    );
    await waitFor(
      async () => total(await scrape(), 'fraudscore_feature_workers') === 1,
      30_000,
      "the API reading the worker's progress",
    );
    expect(await alert('FraudscoreWorkerStalled')).toEqual([]);
    expect(await alert('FraudscoreFeaturesStale')).toEqual([]);
    expect(total(await scrape(), 'fraudscore_feature_staleness_seconds')).toBeLessThan(5);
    expect(await score()).toMatchObject({ degraded: false });

    // Redis stops. The next batch shows its backlog before it writes anything: the gauge is up before any
    // further commit, and while the write waits it follows the backlog as it grows.
    await killPrivateRedis(redis!);
    await waitFor(async () => total(await scrape(), LAG) > 0, 30_000, 'the lag gauge to rise');
    const stuckAt = await committed();
    const first = total(await scrape(), LAG);
    await waitFor(
      async () => total(await scrape(), LAG) >= first + 10,
      30_000,
      'the lag to grow while stuck',
    );
    expect(await committed()).toBe(stuckAt);
    const lagWhileStuck = total(await scrape(), LAG);
    const appliedWhileDown = total(await scrape(), 'fraudscore_events_total', { outcome: 'applied' });

    // Six minutes later by the service's clock: the stall alert fires for the lagging partitions, the API's
    // staleness passes the bound, and answers say so while still being scored by the model.
    offsetMs += JUMP_MS;
    const stalled = await alert('FraudscoreWorkerStalled');
    // Both partitions: the one whose write waits, and the other, which no fetch reaches meanwhile.
    expect(stalled.map((s) => s.labels.partition).sort()).toEqual(['0', '1']);
    for (const s of stalled) {
      expect(s.labels).toMatchObject({ namespace: TARGET.namespace, topic: topics.transactions });
      expect(s.value).toBeGreaterThan(300);
    }
    await waitFor(
      async () => total(await scrape(), 'fraudscore_feature_staleness_seconds') * 1000 > MAX_STALENESS_MS,
      10_000,
      'the staleness to pass the bound',
      () => JSON.stringify(values(lastScrape, 'fraudscore_feature_staleness_seconds')),
    );
    expect((await alert('FraudscoreFeaturesStale')).map((s) => s.labels)).toEqual([
      { namespace: TARGET.namespace },
    ]);
    const staleDuring = total(await scrape(), 'fraudscore_feature_staleness_seconds');
    const during = await score();
    expect(during.degraded).toBe(true);
    expect(during.degraded_reasons).toContain('features_stale');
    expect(during.model.version).toBe('2');
    expect(total(await scrape(), 'fraudscore_degraded_total', { reason: 'features_stale' })).toBeGreaterThan(
      0,
    );
    expect(total(await scrape(), 'fraudscore_events_total', { outcome: 'applied' })).toBe(appliedWhileDown);

    // Redis returns (empty: no persistence) and the producer stops: the worker catches up and everything clears.
    producing = false;
    await producerLoop;
    redis = await startPrivateRedis(port, dir);
    await waitFor(
      async () => {
        const m = await scrape();
        return (
          total(m, 'fraudscore_events_total', { outcome: 'applied' }) >= sent &&
          total(m, LAG) === 0 &&
          total(m, 'fraudscore_feature_staleness_seconds') === 0
        );
      },
      60_000,
      'the worker to catch up and the staleness to clear',
    );
    expect(await committed()).not.toBe(stuckAt);
    expect(await alert('FraudscoreWorkerStalled')).toEqual([]);
    expect(await alert('FraudscoreFeaturesStale')).toEqual([]);
    const after = await score();
    expect(after).toMatchObject({ degraded: false, model: { version: '2' } });
    expect(after.degraded_reasons).toBeUndefined();
    console.info(
      `worker stall: lag ${first} at the first fetch after the kill, ${lagWhileStuck} while stuck (committed ` +
        `offsets unchanged: ${stuckAt}); after a ${JUMP_MS / 60_000}-minute clock jump WorkerStalled fired for ` +
        `${stalled.length} partition(s) at ${stalled.map((s) => s.value.toFixed(0)).join(', ')} s, staleness ` +
        `${staleDuring.toFixed(0)} s, answers ${JSON.stringify(during.degraded_reasons)}; after Redis returned: ` +
        `${sent} events applied, lag 0, staleness 0, no alert, answers not degraded`,
    );
  }, 180_000);
});
