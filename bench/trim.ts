/**
 * Upkeep of a hot entity kept as tiles (issue 17): one terminal with `--transactions` spread evenly over the
 * horizon, then event time moves on a day at a time, and each step's first event runs upkeep (trim of what fell
 * past the horizon, expiry pushed back). Reports the duration of each upkeep call as Redis itself measured it
 * (SLOWLOG, threshold 0, microseconds) next to an ordinary write's, and the fields of the tiles hash. Redis runs
 * one script at a time: while upkeep runs, every read and write of that Redis node waits.
 *
 *   set -a && . .services/env && set +a        # or scripts/services.sh up redis
 *   npx tsx bench/trim.ts [--transactions 50000] [--days 5]
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { loadFeatureSets } from '../src/adapters/fs/feature-set-files.js';
import { RedisFeatureStore } from '../src/adapters/redis/redis-store.js';
import type { StoreEvent } from '../src/domain/features/records.js';
import { DAY_MS } from '../src/domain/features/time.js';

const { values } = parseArgs({
  options: {
    transactions: { type: 'string', default: '50000' },
    days: { type: 'string', default: '5' },
  },
});
const N = Number(values.transactions);
const DAYS = Number(values.days);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6390';
const sets = loadFeatureSets('features');
const horizonMs = Math.max(...[...sets.values()].map((s) => s.lookbackMs)) + DAY_MS;
const prefix = `bench-trim-${Date.now().toString(36)}`;
const redis = new Redis(REDIS_URL);
const store = new RedisFeatureStore(redis, { prefix, retention: { horizonMs } });
const key = { entity: 'terminal', id: 'hot' };
const T0 = Date.parse('2018-05-01T00:00:00Z');
const tx = (i: number, t: number): StoreEvent => ({
  kind: 'tx',
  key,
  txId: `t${i}`,
  t,
  amount: 10 + (i % 90),
});

const step = horizonMs / N;
for (let i = 0; i < N; i += 1000) {
  await store.apply(
    Array.from({ length: Math.min(1000, N - i) }, (_, k) => tx(i + k, T0 + Math.floor((i + k) * step))),
  );
}
const tiles = `${prefix}:{terminal:hot}:tiles`;
const fieldsBefore = await redis.hlen(tiles);

/** Redis' own duration (µs) of the one call `run` makes. */
async function timed(run: () => Promise<unknown>): Promise<number> {
  await redis.config('SET', 'slowlog-log-slower-than', '0');
  await redis.slowlog('RESET');
  await run();
  const log = (await redis.slowlog('GET', 128)) as [number, number, number, string[]][];
  await redis.config('SET', 'slowlog-log-slower-than', '10000');
  return Math.max(...log.filter((e) => e[3][0]?.toLowerCase().startsWith('eval')).map((e) => e[2]));
}

const rows = [];
let i = N;
let newest = T0 + Math.floor((N - 1) * step);
for (let d = 1; d <= DAYS; d++) {
  newest += DAY_MS;
  const upkeep = await timed(() => store.apply([tx(i++, newest)]));
  const ordinary = await timed(() => store.apply([tx(i++, newest + 1)]));
  rows.push({ day: d, upkeep_us: upkeep, ordinary_us: ordinary, tiles_fields: await redis.hlen(tiles) });
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  JSON.stringify(
    {
      scenario: 'trim',
      transactions: N,
      horizon_days: horizonMs / DAY_MS,
      fields_before: fieldsBefore,
      rows,
    },
    null,
    2,
  ),
);
console.error(
  `upkeep of a ${N}-transaction terminal: median ${(med(rows.map((r) => r.upkeep_us)) / 1000).toFixed(1)} ms, ` +
    `max ${(Math.max(...rows.map((r) => r.upkeep_us)) / 1000).toFixed(1)} ms; an ordinary write ${(med(rows.map((r) => r.ordinary_us)) / 1000).toFixed(2)} ms (Redis' own SLOWLOG durations)`,
);
await redis.quit();
