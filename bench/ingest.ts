/**
 * Worker ingestion rate, Kafka → FeatureWorker → Redis, against a baseline of the very same Redis writes sent
 * straight from a pipelined client, side by side in one run (the machine is shared and noisy: read the ratio).
 *
 *   bash scripts/services.sh up all && set -a && . .services/env && set +a
 *   npx tsx bench/ingest.ts [--transactions 200000] [--repeats 3]
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { systemClock } from '../src/adapters/clock/system-clock.js';
import { loadFeatureSets } from '../src/adapters/fs/feature-set-files.js';
import { FeatureWorker } from '../src/adapters/kafka/feature-worker.js';
import { ensureTopics } from '../src/adapters/kafka/topics.js';
import { RedisFeatureStore } from '../src/adapters/redis/redis-store.js';
import { entityUnion } from '../src/domain/features/engine.js';
import { DAY_MS } from '../src/domain/features/time.js';
import { Ingest } from '../src/usecases/ingest.js';
import { generateTransactions } from '../test/helpers/generate.js';

const { values } = parseArgs({
  options: { transactions: { type: 'string', default: '200000' }, repeats: { type: 'string', default: '3' } },
});
const N = Number(values.transactions);
const REPEATS = Number(values.repeats);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6390';
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9192').split(',');

const sets = loadFeatureSets('features');
const entities = entityUnion([...sets.values()]);
const retention = { horizonMs: Math.max(...[...sets.values()].map((s) => s.lookbackMs)) + DAY_MS };
const stamp = Date.now().toString(36);

const txs = generateTransactions({
  seed: 3,
  days: 30,
  customers: 5000,
  terminals: 10000,
  perDay: Math.ceil(N / 30 / 1.11),
}).slice(0, N);
const messages = txs.flatMap((x) => {
  const tx = {
    key: x.customer_id,
    value: JSON.stringify({
      transaction_id: x.id,
      timestamp: new Date(x.t).toISOString(),
      customer_id: x.customer_id,
      terminal_id: x.terminal_id,
      amount: x.amount,
    }),
  };
  return [tx];
});
const events = txs.length;

const kafka = new Kafka({ clientId: 'bench-ingest', brokers, logLevel: logLevel.NOTHING });
const topic = `bench-tx-${stamp}`;
const admin = kafka.admin();
await admin.connect();
await ensureTopics(admin, [
  { topic, numPartitions: 4 },
  { topic: `bench-labels-${stamp}`, numPartitions: 4 },
]);
await admin.disconnect();
const producer = kafka.producer();
await producer.connect();
for (let i = 0; i < messages.length; i += 5000)
  await producer.send({ topic, messages: messages.slice(i, i + 5000) });
await producer.disconnect();

async function viaWorker(run: number): Promise<number> {
  const redis = new Redis(redisUrl);
  const store = new RedisFeatureStore(redis, { prefix: `bench-w-${stamp}-${run}`, retention });
  let applied = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const worker = new FeatureWorker({
    brokers,
    clientId: 'bench-worker',
    groupId: `bench-${stamp}-${run}`,
    topics: { transactions: topic, labels: `bench-labels-${stamp}`, deadLetter: `bench-dlq-${stamp}` },
    ingest: new Ingest({ entities, store, limit: { clock: systemClock, maxFutureMs: 600_000 } }),
    concurrency: 4,
    logger: pino({ level: 'silent' }),
    observer: {
      events: (_t, _o, n) => {
        applied += n;
        if (applied >= events) done();
      },
    },
  });
  await worker.start();
  const started = performance.now();
  await finished;
  const secs = (performance.now() - started) / 1000;
  await worker.stop();
  await dropPrefix(redis, `bench-w-${stamp}-${run}`);
  await redis.quit();
  return events / secs;
}

/** The shared Redis keeps nothing of a run once it is measured. */
async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}

const usedMemory = async (redis: Redis) => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);

/** Events per second, and the bytes of Redis memory the state of all events takes. */
async function baseline(run: number): Promise<{ rate: number; bytes: number }> {
  const redis = new Redis(redisUrl);
  const store = new RedisFeatureStore(redis, { prefix: `bench-b-${stamp}-${run}`, retention });
  const batch = new Ingest({
    entities,
    store,
    limit: { clock: systemClock, maxFutureMs: 600_000 },
  }).decodeMessages(
    'transaction',
    messages.map((m) => Buffer.from(m.value)),
  );
  const before = await usedMemory(redis);
  const started = performance.now();
  // Writes straight to the store, 1,000 transactions (2,000 entity writes) per call.
  for (let i = 0; i < batch.events.length; i += 2000) await store.apply(batch.events.slice(i, i + 2000));
  const secs = (performance.now() - started) / 1000;
  const bytes = (await usedMemory(redis)) - before;
  await dropPrefix(redis, `bench-b-${stamp}-${run}`);
  await redis.quit();
  return { rate: events / secs, bytes };
}

const rows: {
  run: number;
  worker: number;
  baseline: number;
  redis_mib: number;
  redis_bytes_per_event: number;
}[] = [];
for (let run = 0; run < REPEATS; run++) {
  const b = await baseline(run);
  const w = await viaWorker(run);
  const mib = +(b.bytes / 2 ** 20).toFixed(1);
  const perEvent = Math.round(b.bytes / events);
  rows.push({
    run,
    worker: Math.round(w),
    baseline: Math.round(b.rate),
    redis_mib: mib,
    redis_bytes_per_event: perEvent,
  });
  console.error(
    `run ${run}: worker ${Math.round(w)} events/s, baseline ${Math.round(b.rate)} events/s, ` +
      `ratio ${(w / b.rate).toFixed(2)}; Redis memory for all ${events} events ${mib} MiB (${perEvent} B each)`,
  );
}
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const w = median(rows.map((r) => r.worker));
const b = median(rows.map((r) => r.baseline));
console.log(
  JSON.stringify({
    scenario: 'ingest',
    transactions: events,
    repeats: REPEATS,
    worker_events_per_s: w,
    baseline_events_per_s: b,
    ratio: +(w / b).toFixed(2),
    runs: rows,
  }),
);
