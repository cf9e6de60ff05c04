/**
 * A card-testing burst (issue 17's known limit): `--burst` transactions at one terminal inside one ten-minute
 * tile, the finest tile level, among an ordinary day's traffic. A window bound that falls inside that tile makes a
 * read take the tile's raw records; one that does not reads its aggregate. Reports, on Redis, the read of the
 * terminal's windows for a transaction one of whose bounds (7 days before it) falls inside the burst's tile and
 * for one whose bounds all miss it: p50 of the read (client side, one at a time) and the raw records the reply carried.
 *
 *   set -a && . .services/env && set +a        # or scripts/services.sh up redis
 *   npx tsx bench/burst.ts [--burst 5000] [--reads 50]
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { loadFeatureSets } from '../src/adapters/fs/feature-set-files.js';
import { RedisFeatureStore } from '../src/adapters/redis/redis-store.js';
import { entityUnion } from '../src/domain/features/engine.js';
import type { StoreEvent } from '../src/domain/features/records.js';
import { DAY_MS } from '../src/domain/features/time.js';

const { values } = parseArgs({
  options: { burst: { type: 'string', default: '5000' }, reads: { type: 'string', default: '50' } },
});
const BURST = Number(values.burst);
const READS = Number(values.reads);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6390';
const sets = [...loadFeatureSets('features').values()];
const horizonMs = Math.max(...sets.map((s) => s.lookbackMs)) + DAY_MS;
const terminal = entityUnion(sets).find((e) => e.name === 'terminal')!;
const redis = new Redis(REDIS_URL);
const store = new RedisFeatureStore(redis, {
  prefix: `bench-burst-${Date.now().toString(36)}`,
  retention: { horizonMs },
});
const T0 = Date.parse('2018-06-01T12:00:00Z');
let n = 0;
const tx = (t: number): StoreEvent => ({
  kind: 'tx',
  key: { entity: 'terminal', id: 'T1' },
  txId: `b${n++}`,
  t,
  amount: 5,
});
// Ordinary traffic for 40 days (one transaction every 10 minutes), and the burst in [T0, T0 + 10 min).
const events: StoreEvent[] = [];
for (let t = T0 - 20 * DAY_MS; t < T0 + 20 * DAY_MS; t += 600_000) events.push(tx(t + 7_000));
for (let i = 0; i < BURST; i++) events.push(tx(T0 + 1 + Math.floor((i * 599_000) / BURST)));
events.sort((a, b) => a.t - b.t);
for (let i = 0; i < events.length; i += 1000) await store.apply(events.slice(i, i + 1000));

async function reads(at: number) {
  const { summaryQueries } = sets.at(-1)!;
  const q = summaryQueries({
    transaction_id: 'q',
    customer_id: 'C',
    terminal_id: 'T1',
    amount: 1,
    t: at,
  } as never).find((x) => x.entity === 'terminal')!;
  const ms: number[] = [];
  let raw = 0;
  for (let i = 0; i < READS; i++) {
    const t0 = performance.now();
    const [s] = await store.summarize([q]);
    ms.push(performance.now() - t0);
    raw = s!.end - s!.start;
  }
  ms.sort((a, b) => a - b);
  return { read_p50_ms: Number(ms[Math.floor(ms.length / 2)]!.toFixed(2)), raw_records: raw };
}

// The terminal's windows end a delay (7 days) before the transaction: seven days after the burst's middle a
// bound falls inside the burst's tile; half a day later none does.
const inside = await reads(T0 + 7 * DAY_MS + 300_000);
const outside = await reads(T0 + 7 * DAY_MS + DAY_MS / 2);
console.log(JSON.stringify({ scenario: 'burst', burst: BURST, terminal: terminal.name, inside, outside }));
console.error(
  `burst of ${BURST} in one 10-minute tile: a read whose bound splits it ${inside.read_p50_ms} ms (${inside.raw_records} raw records), ` +
    `one whose bounds miss it ${outside.read_p50_ms} ms (${outside.raw_records} raw records)`,
);
await redis.quit();
