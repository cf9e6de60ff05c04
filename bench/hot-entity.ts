/**
 * Hot entities (issue 17, item 5a): terminals with 100, 5,000, 20,000 and 50,000 transactions in their windows,
 * on Redis, scored one request at a time through the real service (`createService` + `app.inject`, the default
 * configuration: 50 ms deadline, shipped models, audit log at info to /dev/null). Reports, per terminal, the
 * server's own `timings_ms` (features and total, p50 and p99), the degraded answers, and whether the features
 * equal the reference: the domain engine run over every raw event of the customer and the terminal, built here
 * from the generated history (no store involved). Ratios first: each terminal's p50 against the 100 one's.
 *
 *   set -a && . .services/env && set +a        # or scripts/services.sh up redis
 *   npx tsx bench/hot-entity.ts [--requests 200] [--sizes 100,5000,20000,50000]
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { systemClock } from '../src/adapters/clock/system-clock.js';
import { loadFeatureSets } from '../src/adapters/fs/feature-set-files.js';
import { RedisFeatureStore } from '../src/adapters/redis/redis-store.js';
import { loadConfig } from '../src/config.js';
import { entityUnion, keyValue, labelEvents, transactionEvents } from '../src/domain/features/engine.js';
import type { RecordColumns, StoreEvent } from '../src/domain/features/records.js';
import { DAY_MS } from '../src/domain/features/time.js';
import { createService } from '../src/wiring/service.js';
import { rng } from '../test/helpers/generate.js';
import { BENCH_MODEL_DIR } from './lib/service.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '30' },
    checks: { type: 'string', default: '20' },
    sizes: { type: 'string', default: '100,5000,20000,50000' },
  },
});
const REQUESTS = Number(values.requests);
const WARMUP = Number(values.warmup);
const CHECKS = Number(values.checks);
const SIZES = values.sizes.split(',').map(Number);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6390';
const MODEL_DIR = BENCH_MODEL_DIR;
const prefix = `bench-hot-${Date.now().toString(36)}`;

const sets = loadFeatureSets('features');
const entities = entityUnion([...sets.values()]);
const retention = { horizonMs: Math.max(...[...sets.values()].map((s) => s.lookbackMs)) + DAY_MS };
/** The scoring time; the terminal windows are (T − 37 d, T − 7 d]. */
const T = Date.parse('2018-08-09T10:00:00Z');
const CUSTOMERS = 5000;
const random = rng(17);

interface Tx {
  id: string;
  t: number;
  amount: number;
  customer_id: string;
  terminal_id: string;
  fraud: boolean;
}

/**
 * `n` transactions in the terminal's windows (T − 37 d, T − 7 d], and the same rate around them in the
 * horizon, as a terminal busy every day would have: the 7 days before T and the day before the windows.
 */
function terminalHistory(n: number): Tx[] {
  const terminal = `hot-${n}`;
  const perMs = n / (30 * DAY_MS);
  const span = (lo: number, hi: number, k: number) =>
    Array.from({ length: k }, () => lo + 1000 + Math.floor((random() * (hi - lo - 1000)) / 1000) * 1000);
  const times = [
    ...span(T - 37 * DAY_MS, T - 7 * DAY_MS, n),
    ...span(T - 7 * DAY_MS, T - 60_000, Math.round(perMs * 7 * DAY_MS)),
    ...span(T - 38 * DAY_MS, T - 37 * DAY_MS - 1000, Math.round(perMs * DAY_MS)),
  ].sort((a, b) => a - b);
  return times.map((t, i) => ({
    id: `${terminal}-${i}`,
    t,
    amount: Math.round(random() * 20_000) / 100,
    customer_id: `card-${Math.floor(random() * CUSTOMERS)}`,
    terminal_id: terminal,
    fraud: random() < 0.03,
  }));
}

const histories = new Map(SIZES.map((n) => [n, terminalHistory(n)]));
const all = [...histories.values()].flat().sort((a, b) => a.t - b.t);
const inWindows = (xs: Tx[]) => xs.filter((x) => x.t > T - 37 * DAY_MS && x.t <= T - 7 * DAY_MS).length;

const redis = new Redis(REDIS_URL);
const store = new RedisFeatureStore(redis, { prefix, retention });
const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
const memoryBefore = await usedMemory();
const seeding = performance.now();
let batch: StoreEvent[] = [];
for (const x of all) {
  batch.push(...transactionEvents(x, entities));
  if (x.fraud) batch.push(...labelEvents({ ...x, txId: x.id, fraud: true }, entities));
  if (batch.length >= 2000) {
    await store.apply(batch);
    batch = [];
  }
}
await store.apply(batch);
const seedSecs = (performance.now() - seeding) / 1000;
const memoryAfter = await usedMemory();
console.error(
  `seeded ${all.length} transactions (${SIZES.map((n) => `${n}: ${inWindows(histories.get(n)!)} in windows`).join(', ')}) ` +
    `in ${seedSecs.toFixed(1)} s; Redis memory +${((memoryAfter - memoryBefore) / 2 ** 20).toFixed(1)} MiB`,
);

const logger = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false, minLength: 4096 }));
const service = await createService(
  loadConfig({ REDIS_URL, REDIS_KEY_PREFIX: prefix, MODEL_DIR, LOG_LEVEL: 'info' }),
  { logger: logger as never, clock: systemClock },
);
const app = service.app;

let requestId = 0;
function request(n: number): Tx {
  return {
    id: `score-${n}-${requestId++}`,
    t: T,
    amount: Math.round(random() * 20_000) / 100,
    customer_id: `card-${Math.floor(random() * CUSTOMERS)}`,
    terminal_id: `hot-${n}`,
    fraud: false,
  };
}

interface Answer {
  degraded: boolean;
  model: { feature_set: string };
  timings_ms: { features: number; total: number };
  features?: Record<string, number>;
}

async function score(x: Tx, explain: boolean): Promise<Answer> {
  const r = await app.inject({
    method: 'POST',
    url: explain ? '/v1/score?explain=true' : '/v1/score',
    payload: {
      transaction_id: x.id,
      timestamp: new Date(x.t).toISOString(),
      customer_id: x.customer_id,
      terminal_id: x.terminal_id,
      amount: x.amount,
    },
  });
  if (r.statusCode !== 200) throw new Error(`score: ${r.statusCode} ${r.body}`);
  return r.json() as Answer;
}

/** Every raw event of one entity, as the engine reads them: sorted by (time, arrival), labels joined. */
function columns(xs: readonly Tx[]): RecordColumns {
  const n = xs.length;
  return {
    start: 0,
    end: n,
    ids: xs.map((x) => x.id),
    t: Float64Array.from(xs, (x) => x.t),
    seq: Float64Array.from(xs, (_, i) => i),
    amount: Float64Array.from(xs, (x) => x.amount),
    fraud: Uint8Array.from(xs, (x) => (x.fraud ? 1 : 0)),
  };
}

function reference(x: Tx, featureSet: string): Record<string, number> {
  const set = sets.get(featureSet)!;
  const windows = set.entities.map((e) =>
    columns(all.filter((y) => keyValue(y, e.key) === keyValue(x, e.key))),
  );
  const v = set.compute(x, windows);
  return Object.fromEntries(set.names.map((name, i) => [name, v[i]!]));
}

const timings = new Map(SIZES.map((n) => [n, { features: [] as number[], total: [] as number[] }]));
const degraded = new Map(SIZES.map((n) => [n, 0]));
for (let i = 0; i < WARMUP; i++) for (const n of SIZES) await score(request(n), false);
// Round robin, so that whatever else the machine does falls on every terminal alike.
for (let i = 0; i < REQUESTS; i++)
  for (const n of SIZES) {
    const a = await score(request(n), false);
    timings.get(n)!.features.push(a.timings_ms.features);
    timings.get(n)!.total.push(a.timings_ms.total);
    if (a.degraded) degraded.set(n, degraded.get(n)! + 1);
  }
const mismatches = new Map(SIZES.map((n) => [n, [] as string[]]));
for (let i = 0; i < CHECKS; i++)
  for (const n of SIZES) {
    const x = request(n);
    const a = await score(x, true);
    if (a.degraded) degraded.set(n, degraded.get(n)! + 1);
    const want = reference(x, a.model.feature_set);
    for (const [name, value] of Object.entries(a.features ?? {}))
      if (!Object.is(value, want[name])) mismatches.get(n)!.push(`${x.id} ${name}: ${value} ≠ ${want[name]}`);
  }

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const rows = SIZES.map((n) => {
  const t = timings.get(n)!;
  return {
    transactions_in_windows: inWindows(histories.get(n)!),
    features_p50_ms: quantile(t.features, 0.5),
    features_p99_ms: quantile(t.features, 0.99),
    total_p50_ms: quantile(t.total, 0.5),
    total_p99_ms: quantile(t.total, 0.99),
    degraded: degraded.get(n)!,
    answers: REQUESTS + CHECKS,
    features_equal_reference: `${CHECKS - new Set(mismatches.get(n)!.map((m) => m.split(' ')[0])).size}/${CHECKS}`,
  };
});
const base = rows[0]!;
console.error(
  `machine: ${cpus().length} × ${cpus()[0]?.model}, node ${process.version}; ${REQUESTS} requests each`,
);
for (const r of rows)
  console.error(
    `${String(r.transactions_in_windows).padStart(6)} tx: total p50 ${(r.total_p50_ms / base.total_p50_ms).toFixed(2)}× ` +
      `(${r.total_p50_ms} ms, p99 ${r.total_p99_ms}), features p50 ${r.features_p50_ms} ms (p99 ${r.features_p99_ms}), ` +
      `degraded ${r.degraded}/${r.answers}, features = reference ${r.features_equal_reference}`,
  );
for (const [n, m] of mismatches) if (m.length) console.error(`${n}: ${m.slice(0, 5).join('; ')}`);

await service.close();
// The shared Redis keeps nothing of this run.
let cursor = '0';
do {
  const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
  cursor = next;
  if (keys.length) await redis.unlink(...keys);
} while (cursor !== '0');
await redis.quit();

console.log(
  JSON.stringify({
    scenario: 'hot-entity',
    requests: REQUESTS,
    ratio_total_p50_vs_smallest: Object.fromEntries(
      rows.map((r) => [r.transactions_in_windows, +(r.total_p50_ms / base.total_p50_ms).toFixed(2)]),
    ),
    redis_mib: +((memoryAfter - memoryBefore) / 2 ** 20).toFixed(1),
    rows,
  }),
);
