/**
 * Issue 9 (Redis outage): a private redis-server (its own port, no persistence; the shared Redis is not
 * touched) is SIGKILLed in the middle of a steady load on the real HTTP server and restarted on the same port
 * ~3 s later. Every valid request is answered 200 — degraded while Redis is away, with the reason and, for a
 * timeout, the server's word that the deadline fired; /health/ready reports the outage (503, feature_store not
 * ok) and recovers once Redis answers again (the time it took is reported, not asserted).
 * A FeatureWorker writing to the same Redis consumes a topic filled during the outage and loses nothing: after
 * recovery its state gives the features of the in-memory store fed the same events.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { type Admin, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../src/adapters/fs/feature-set-files.js';
import { arrayRows } from '../../src/adapters/fs/handbook-csv.js';
import { FeatureWorker } from '../../src/adapters/kafka/feature-worker.js';
import { RedisFeatureStore } from '../../src/adapters/redis/redis-store.js';
import { loadConfig } from '../../src/config.js';
import { entityUnion } from '../../src/domain/features/engine.js';
import { Ingest } from '../../src/usecases/ingest.js';
import { replay } from '../../src/usecases/replay.js';
import { createService, type Service } from '../../src/wiring/service.js';
import { expectSameFeatures, realTimeLimit, retentionFor } from '../helpers/features.js';
import { generateTransactions, handbookRows } from '../helpers/generate.js';
import { createTopics, topicSink, uniqueTopics } from '../helpers/kafka.js';
import { captureLogger, type LogLine, silentLogger } from '../helpers/logger.js';
import { freePort } from '../helpers/net.js';
import { stopChild } from '../helpers/process.js';
import { startPrivateRedis } from '../helpers/redis.js';
import { requireKafka, uniqueName } from '../helpers/services.js';
import { sleep, waitFor } from '../helpers/wait.js';

const sets = [...loadFeatureSets('features').values()];
const entities = entityUnion(sets);
const retention = retentionFor(sets);
/**
 * Generous on purpose: the test is about what an outage does (answers degrade at once, nothing fails), not about
 * latency, and it must hold on a slow or busy machine too. While Redis is away the store fails fast anyway.
 */
const DEADLINE_MS = 250;
const RATE = 250;
const LOAD_MS = 10_000;
const KILL_AT_MS = 3_000;
const DOWN_MS = 3_000;
const events = handbookRows(
  generateTransactions({ seed: 51, days: 3, customers: 60, terminals: 40, perDay: 400 }),
);

describe('Redis goes away under load and comes back', () => {
  const topics = uniqueTopics('ro');
  let dir: string;
  let port: number;
  let redisChild: ChildProcess | undefined;
  let service: Service;
  let base: string;
  let kafka: Kafka;
  let admin: Admin;
  let workerRedis: Redis;
  let workerStore: RedisFeatureStore;
  let worker: FeatureWorker;
  const logs: LogLine[] = [];
  const counts = { applied: 0, duplicate: 0, late: 0, invalid: 0, future: 0 };
  let storeFailures = 0;

  beforeAll(async () => {
    const { brokers } = await requireKafka();
    dir = await mkdtemp(join(tmpdir(), 'redis-outage-'));
    port = await freePort();
    redisChild = await startPrivateRedis(port, dir);
    const url = `redis://127.0.0.1:${port}`;
    service = await createService(
      loadConfig({
        MODEL_DIR: 'test/fixtures/models',
        REDIS_URL: url,
        REQUEST_DEADLINE_MS: String(DEADLINE_MS),
      }),
      { logger: captureLogger(logs, 'warn') },
    );
    await service.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(service.app.server.address() as { port: number }).port}`;

    kafka = new Kafka({ clientId: 'redis-outage-test', brokers, logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    await createTopics(admin, topics, 2);
    // The worker's client as src/wiring/stores.ts builds it for `fraudscore worker`: queue while disconnected, retry forever.
    workerRedis = new Redis(url, {
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      enableAutoPipelining: false,
      lazyConnect: false,
    });
    workerRedis.on('error', () => {});
    workerStore = new RedisFeatureStore(workerRedis, { prefix: uniqueName('ro'), retention });
    worker = new FeatureWorker({
      brokers,
      clientId: 'redis-outage-worker',
      groupId: uniqueName('ro-group'),
      topics,
      ingest: new Ingest({
        entities,
        limit: realTimeLimit,
        store: {
          kind: workerStore.kind,
          apply: (e) =>
            workerStore.apply(e).catch((err: unknown) => {
              storeFailures++;
              throw err;
            }),
          summarize: (q) => workerStore.summarize(q),
          read: (q) => workerStore.read(q),
          ping: () => workerStore.ping(),
          close: () => workerStore.close(),
        },
      }),
      logger: silentLogger(),
      retryDelayMs: { min: 100, max: 1000 },
      observer: {
        events: (_topic, outcome, n) => {
          counts[outcome] += n;
        },
      },
    });
    await worker.start();
  });

  afterAll(async () => {
    await worker?.stop().catch(() => {});
    await workerRedis?.quit().catch(() => workerRedis.disconnect());
    await service?.close().catch(() => {});
    await admin?.deleteTopics({ topics: Object.values(topics) }).catch(() => {});
    await admin?.disconnect();
    if (redisChild) await stopChild(redisChild, 5_000);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('answers every request, reports and recovers readiness, and the worker loses no update', async () => {
    // A service in production is warm: its first requests pay for JIT compilation, not for Redis being away.
    await runLoad(base, RATE, 1_000, () => {}, 'warm');
    const t0 = Date.now();
    const results: Result[] = [];
    const ready: { at: number; status: number; storeOk: boolean }[] = [];
    const marks = { killed: 0, restarted: 0, answering: 0, produced: 0, producedAt: 0 };

    const load = runLoad(base, RATE, LOAD_MS, (r) => results.push({ ...r, at: r.at - t0 }));
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const at = Date.now() - t0;
        const r = await fetch(`${base}/health/ready`).catch(() => undefined);
        const body = r ? ((await r.json()) as { checks: { feature_store: { ok: boolean } } }) : undefined;
        ready.push({ at, status: r?.status ?? 0, storeOk: body?.checks.feature_store.ok ?? false });
        await sleep(100);
      }
    })();

    await sleep(KILL_AT_MS);
    redisChild!.kill('SIGKILL');
    await new Promise<void>((r) =>
      redisChild!.exitCode !== null ? r() : redisChild!.once('exit', () => r()),
    );
    marks.killed = Date.now() - t0;

    // Fill the worker's topics while Redis is away.
    await sleep(300);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const sent = await replay(arrayRows(events), topicSink(producer, topics), { rate: 0 });
    await producer.disconnect();
    marks.produced = sent.transactions + sent.labels;
    marks.producedAt = Date.now() - t0;

    await sleep(Math.max(0, marks.killed + DOWN_MS - (Date.now() - t0)));
    redisChild = await startPrivateRedis(port, dir);
    marks.answering = Date.now() - t0;
    marks.restarted = marks.answering;

    await load;
    // Keep polling until readiness is back (bounded), then stop.
    const recoverBy = Date.now() + 10_000;
    while (Date.now() < recoverBy && !ready.some((x) => x.at > marks.answering && x.status === 200))
      await sleep(100);
    polling = false;
    await poll;

    // Every valid request: 200, a score, within the deadline (plus scheduling slack); degraded only around the outage.
    expect(results.length).toBeGreaterThan(RATE * (LOAD_MS / 1000) * 0.9);
    const failed = results.filter((r) => r.status !== 200);
    expect(failed, JSON.stringify(failed.slice(0, 5))).toEqual([]);
    for (const r of results) {
      expect(r.score).toBeGreaterThanOrEqual(0);
      expect(r.score).toBeLessThanOrEqual(1);
    }
    // No client- or server-side duration is asserted (the machine may be slow or busy): what the server says
    // is. A degraded answer names why, and one that waited for the store reports that the deadline fired.
    const degraded = results.filter((r) => r.degraded);
    for (const r of degraded) {
      expect(r.reasons?.length, JSON.stringify(r)).toBeGreaterThan(0);
      for (const reason of r.reasons!)
        expect(['features_timeout', 'features_unavailable', 'model_timeout'], JSON.stringify(r)).toContain(
          reason,
        );
    }
    for (const r of degraded.filter((x) => x.reasons!.includes('features_timeout')))
      expect(r.features, JSON.stringify(r)).toBeGreaterThanOrEqual(DEADLINE_MS * 0.98);
    // Sent well inside the outage: a request sent just before the restart may be read once Redis is back.
    const during = results.filter(
      (r) => r.at > marks.killed + 200 && r.at + DEADLINE_MS + 500 < marks.restarted,
    );
    // A sample, not a rate: under CPU stress the load generator sends fewer than planned (225 in one run).
    expect(during.length).toBeGreaterThan(RATE / 5);
    expect(during.every((r) => r.degraded)).toBe(true);
    // While Redis is up, features are never unavailable; a timeout can still happen when the machine is busy
    // (a fresh-clone run beside four other test suites timed out 54 of ~480 answers), so that is bounded loosely.
    const before = results.filter((r) => r.at < KILL_AT_MS - 500);
    const degradedBefore = before.filter((r) => r.degraded);
    expect(before.filter((r) => r.reasons?.includes('features_unavailable'))).toEqual([]);
    expect(degradedBefore.length, JSON.stringify(degradedBefore.slice(0, 5))).toBeLessThan(
      before.length * 0.25,
    );

    // Readiness: 503 with feature_store not ok during the outage, 200 again once Redis answers.
    const down = ready.filter((x) => x.at > marks.killed + 300 && x.at < marks.restarted);
    expect(down.length).toBeGreaterThan(5);
    expect(down.every((x) => x.status === 503 && !x.storeOk)).toBe(true);
    const firstUnready = ready.find((x) => x.at >= marks.killed && x.status === 503);
    const firstReady = ready.find((x) => x.at > marks.answering && x.status === 200);
    expect(firstReady, JSON.stringify(ready.slice(-10))).toBeDefined();
    const recoveryMs = firstReady!.at - marks.answering;
    // Once ready again, scores use the store again.
    const after = results.filter((r) => r.at > firstReady!.at + 200);
    expect(after.length).toBeGreaterThan(RATE / 2);
    expect(after.filter((r) => r.reasons?.includes('features_unavailable'))).toEqual([]);
    expect(after.filter((r) => r.degraded).length).toBeLessThan(after.length * 0.25);

    // The worker: every event applied once Redis is back, nothing lost, nothing counted twice.
    const total = marks.produced;
    await waitFor(
      () => counts.applied + counts.duplicate + counts.late + counts.invalid >= total,
      60_000,
      'the worker',
    );
    expect(counts).toEqual({ applied: total, duplicate: 0, late: 0, invalid: 0, future: 0 });
    const compared = await expectSameFeatures(workerStore, events, sets, entities, 200);

    const overDeadline = results.filter((r) => (r.total ?? 0) > DEADLINE_MS);
    const lat = results.map((r) => r.ms).sort((a, b) => a - b);
    const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!.toFixed(1);
    console.info(
      `redis outage: ${results.length} requests in ${LOAD_MS / 1000} s (${during.length} while Redis was down ` +
        `${((marks.restarted - marks.killed) / 1000).toFixed(1)} s, ${results.filter((r) => r.degraded).length} degraded), ` +
        `all 200; client latency p50 ${q(0.5)} p99 ${q(0.99)} max ${lat.at(-1)!.toFixed(1)} ms; server total max ` +
        `${Math.max(...results.map((r) => r.total ?? 0)).toFixed(1)} ms (${overDeadline.length} over ${DEADLINE_MS} ms, ` +
        `sent at ${JSON.stringify(overDeadline.slice(0, 8).map((r) => [r.at, r.total]))}; kill at ${marks.killed}, ` +
        `restart at ${marks.restarted}, produced by ${marks.producedAt}); not ready ${
          firstUnready ? firstUnready.at - marks.killed : '?'
        } ms after the kill, ready ${recoveryMs} ms after Redis answered; worker: ${total} events produced during ` +
        `the outage, ${counts.applied} applied after it (${storeFailures} failed store writes retried), ` +
        `${compared} feature vectors equal`,
    );
  }, 120_000);
});

// ------------------------------------------------------------------------------------------------ helpers

type Result = {
  at: number;
  status: number;
  ms: number;
  total?: number;
  /** The features stage as the server timed it. */
  features?: number;
  degraded?: boolean;
  reasons?: string[];
  score?: number;
};

/** A steady open-loop load: one request every 1000/rate ms (at most 64 in flight), each a new transaction. */
async function runLoad(
  base: string,
  rate: number,
  durationMs: number,
  onResult: (r: Result) => void,
  idPrefix = 'ro',
) {
  const start = Date.now();
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; ; i++) {
    const due = start + (i * 1000) / rate;
    if (due - start >= durationMs) break;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    while (inFlight.size >= 64) await Promise.race(inFlight);
    const body = JSON.stringify({
      transaction_id: `${idPrefix}-${i}`,
      timestamp: new Date(Date.parse('2018-04-03T12:00:00Z') + i * 1000).toISOString(),
      customer_id: `C${i % 60}`,
      terminal_id: `T${i % 40}`,
      amount: 10 + (i % 300),
    });
    const sentAt = Date.now();
    const t = performance.now();
    const p = fetch(`${base}/v1/score`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    })
      .then(async (r) => {
        const json = (await r.json()) as {
          degraded?: boolean;
          degraded_reasons?: string[];
          score?: number;
          timings_ms?: { total: number; features: number };
        };
        onResult({
          at: sentAt,
          status: r.status,
          ms: performance.now() - t,
          total: json.timings_ms?.total,
          features: json.timings_ms?.features,
          degraded: json.degraded,
          reasons: json.degraded_reasons,
          score: json.score,
        });
      })
      .catch(() => onResult({ at: sentAt, status: 0, ms: performance.now() - t }))
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
}

/** Starts a private redis-server (no persistence) and waits until it answers PING. */
