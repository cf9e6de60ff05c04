/**
 * Issue 9 (Kafka outage): the broker is stopped (`scripts/services.sh down kafka`) in the middle of a replay
 * and started again a few seconds later. The replay retries through the outage; the worker reconnects and
 * resumes from its committed offsets. Afterwards the Redis state gives, for every transaction, the features of
 * the in-memory store fed the same events: nothing lost, nothing counted twice (a message re-sent by the replay
 * or redelivered to the worker is a duplicate and changes nothing).
 *
 * The broker is shared with the other test files: afterAll brings it back up whatever happened.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../src/adapters/fs/feature-set-files.js';
import { arrayRows } from '../../src/adapters/fs/handbook-csv.js';
import { FeatureWorker } from '../../src/adapters/kafka/feature-worker.js';
import { RedisFeatureStore } from '../../src/adapters/redis/redis-store.js';
import { entityUnion } from '../../src/domain/features/engine.js';
import { Ingest } from '../../src/usecases/ingest.js';
import { replay } from '../../src/usecases/replay.js';
import { expectSameFeatures, realTimeLimit, retentionFor } from '../helpers/features.js';
import { generateTransactions, handbookRows } from '../helpers/generate.js';
import { createTopics, uniqueTopics } from '../helpers/kafka.js';
import { silentLogger } from '../helpers/logger.js';
import { deleteByPrefix } from '../helpers/redis.js';
import { REPO_ROOT, requireKafka, requireRedis, uniqueName } from '../helpers/services.js';
import { sleep, waitFor } from '../helpers/wait.js';

const sets = [...loadFeatureSets('features').values()];
const entities = entityUnion(sets);
const retention = retentionFor(sets);
const rows = handbookRows(
  generateTransactions({ seed: 61, days: 4, customers: 120, terminals: 60, perDay: 1500 }),
);
const RATE = 1000;
/** Between the broker having stopped and the start of its restart (which itself takes several seconds). */
const OUTAGE_PAUSE_MS = 4_000;
const sh = promisify(execFile);
const services = (...args: string[]) =>
  sh('bash', ['scripts/services.sh', ...args], { cwd: REPO_ROOT, timeout: 150_000 });

describe('the Kafka broker stops during a replay and comes back', () => {
  const topics = uniqueTopics('ko');
  const prefix = uniqueName('ko');
  let brokers: string[];
  let redis: Redis;
  let store: RedisFeatureStore;
  let worker: FeatureWorker;
  const counts = { applied: 0, duplicate: 0, late: 0, invalid: 0, future: 0 };

  beforeAll(async () => {
    ({ brokers } = await requireKafka());
    await services('is-up', 'kafka').catch(() => {
      throw new Error(
        'this test stops and restarts the broker through scripts/services.sh; the broker at KAFKA_BROKERS is not ' +
          'one services.sh started (start it with: bash scripts/services.sh up kafka)',
      );
    });
    const { url } = await requireRedis();
    const admin = new Kafka({ clientId: 'kafka-outage-admin', brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await createTopics(admin, topics, 4);
    await admin.disconnect();
    redis = new Redis(url);
    store = new RedisFeatureStore(redis, { prefix, retention });
    worker = new FeatureWorker({
      brokers,
      clientId: 'kafka-outage-worker',
      groupId: uniqueName('ko-group'),
      topics,
      ingest: new Ingest({ entities, store, limit: realTimeLimit }),
      logger: silentLogger(),
      chunkSize: 200,
      observer: {
        events: (_topic, outcome, n) => {
          counts[outcome] += n;
        },
      },
    });
    await worker.start();
  }, 120_000);

  afterAll(async () => {
    // Other test files need the broker: bring it back whatever happened above.
    await services('up', 'kafka').catch((err: unknown) => console.error('could not restart kafka', err));
    await worker?.stop().catch(() => {});
    const admin = new Kafka({ clientId: 'kafka-outage-admin', brokers, logLevel: logLevel.NOTHING }).admin();
    await admin
      .connect()
      .then(() => admin.deleteTopics({ topics: Object.values(topics) }))
      .catch(() => {})
      .finally(() => admin.disconnect());
    if (redis) {
      await deleteByPrefix(redis, prefix);
      await redis.quit();
    }
  }, 180_000);

  it('replays through the outage and ends with the features of the backfill', async () => {
    const kafka = new Kafka({
      clientId: 'kafka-outage-replay',
      brokers,
      logLevel: logLevel.NOTHING,
      retry: { initialRetryTime: 300, retries: 5 },
    });
    let producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const stats = { sendFailures: 0, resends: 0 };
    let sent = 0;
    // Each send is retried until the broker takes it (bounded): a batch may be written twice, never lost.
    const sendWithRetry = async (topic: string, messages: { key: string; value: string }[]) => {
      const end = Date.now() + 120_000;
      for (let attempt = 0; ; attempt++) {
        try {
          await producer.send({ topic, messages });
          if (attempt > 0) stats.resends++;
          return;
        } catch (err) {
          stats.sendFailures++;
          if (Date.now() > end) throw err;
          await sleep(1_000);
          // A producer that gave up may need a fresh connection once the broker is back.
          await producer.disconnect().catch(() => {});
          producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
          await producer.connect().catch(() => {});
        }
      }
    };
    const replaying = replay(
      arrayRows(rows),
      { send: (which, messages) => sendWithRetry(topics[which], [...messages]) },
      { rate: RATE, batchSize: 200, onProgress: (n) => (sent = n) },
    );

    await waitFor(() => sent >= rows.length * 0.25, 60_000, 'a quarter of the replay');
    const t0 = Date.now();
    const sentBeforeOutage = sent;
    const appliedBeforeOutage = counts.applied;
    await services('down', 'kafka');
    const down = Date.now();
    await sleep(OUTAGE_PAUSE_MS);
    const sentDuringOutage = sent - sentBeforeOutage;
    await services('up', 'kafka');
    const up = Date.now();
    const totals = await replaying;
    await producer.disconnect();
    expect(totals.transactions).toBe(rows.length);
    const distinct = totals.transactions + totals.labels;

    // The worker resumes: every distinct event applied exactly once; resends and redeliveries are duplicates.
    await waitFor(() => counts.applied >= distinct, 90_000, 'the worker');
    await sleep(1_000);
    expect(counts.applied).toBe(distinct);
    expect(counts.late + counts.invalid).toBe(0);
    const caughtUp = Date.now();

    const compared = await expectSameFeatures(store, rows, sets, entities);
    expect(compared).toBe(rows.length * sets.length);
    console.info(
      `kafka outage: broker stopped ${((down - t0) / 1000).toFixed(1)} s (graceful) and down until ready again ` +
        `${((up - down) / 1000).toFixed(1)} s later; replay of ${totals.transactions} transactions + ${totals.labels} ` +
        `labels at ${RATE} tx/s: ${sentBeforeOutage} sent before the outage, ${sentDuringOutage} while it was stopped, ` +
        `${stats.sendFailures} failed sends retried (${stats.resends} batches needed a retry); worker: ` +
        `${appliedBeforeOutage} applied before, ${counts.applied} applied in all, ${counts.duplicate} duplicates, ` +
        `caught up ${((caughtUp - up) / 1000).toFixed(1)} s after the broker was back; ${compared} feature vectors equal`,
    );
  }, 240_000);
});
