/**
 * A hot device (issue 20): one device shared by 5,000 cards (card testing, a fraud ring's phone), next to an
 * ordinary one with 3 cards, on Redis. Seeds the week before T through the store, then reads the v3 features of a
 * transaction on each device as scoring does (`summarize` of every entity of transaction_v3), and reports per
 * device: the read's p50 and p99 (ms), what came back for the device (raw records, tile aggregates, link ids,
 * whether the store counted the distinct cards itself), its Redis state (MEMORY USAGE of its keys), and whether
 * the distinct-card counts equal the brute-force count over the generated history (exit code 1 if not).
 *
 *   set -a && . .services/env && set +a        # or scripts/services.sh up redis
 *   npx tsx bench/hot-device.ts [--cards 5000] [--per-card 4] [--reads 200]
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { loadFeatureSets } from '../src/adapters/fs/feature-set-files.js';
import { RedisFeatureStore } from '../src/adapters/redis/redis-store.js';
import { entityUnion, type TxInput, transactionEvents } from '../src/domain/features/engine.js';
import type { StoreEvent, WindowSummary } from '../src/domain/features/records.js';
import { DAY_MS } from '../src/domain/features/time.js';
import { rng } from '../test/helpers/generate.js';

const { values } = parseArgs({
  options: {
    cards: { type: 'string', default: '5000' },
    'per-card': { type: 'string', default: '4' },
    reads: { type: 'string', default: '200' },
  },
});
const CARDS = Number(values.cards);
const PER_CARD = Number(values['per-card']);
const READS = Number(values.reads);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6390';

const sets = loadFeatureSets('features');
const v3 = sets.get('transaction_v3')!;
const entities = entityUnion([...sets.values()]);
const retention = { horizonMs: Math.max(...[...sets.values()].map((s) => s.lookbackMs)) + DAY_MS };
const T = Date.parse('2018-08-09T10:00:00Z');
const random = rng(23);

/** `cards` cards, `perCard` transactions each, on `device` over the 7 days before T (whole seconds). */
function history(device: string, cards: number, perCard: number): TxInput[] {
  const out: TxInput[] = [];
  for (let c = 0; c < cards; c++)
    for (let k = 0; k < perCard; k++)
      out.push({
        id: `${device}-${c}-${k}`,
        t: T - 60_000 - Math.floor(random() * 7 * 86_400) * 1000,
        amount: Math.round(random() * 300) / 100,
        customer_id: `${device}-card-${c}`,
        terminal_id: `shop-${Math.floor(random() * 50)}`,
        device_id: device,
        ip: `198.51.100.${Math.floor(random() * 250)}`,
      });
  return out.sort((a, b) => a.t - b.t);
}

const devices = [
  { name: 'hot-device', txs: history('hot-device', CARDS, PER_CARD) },
  { name: 'ordinary-device', txs: history('ordinary-device', 3, 10) },
];

const redis = new Redis(REDIS_URL);
const prefix = `bench-device-${Date.now().toString(36)}`;
const store = new RedisFeatureStore(redis, { prefix, retention });
const seeding = performance.now();
let batch: StoreEvent[] = [];
for (const x of devices.flatMap((d) => d.txs).sort((a, b) => a.t - b.t)) {
  batch.push(...transactionEvents(x, entities));
  if (batch.length >= 2000) {
    await store.apply(batch);
    batch = [];
  }
}
await store.apply(batch);
console.error(`seeded in ${((performance.now() - seeding) / 1000).toFixed(1)} s`);

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]!;
const device = v3.entities.findIndex((e) => e.name === 'device');
const rows = [];
// Scoring at T, after every event (as online); and, on the hot device, at the instant of its newest event, where
// the store cannot count (an id has a record at the transaction's time) and sends whole link sets instead.
const probes = [
  ...devices.map((d) => ({ d, label: d.name, t: T })),
  { d: devices[0]!, label: `${devices[0]!.name} (event at t)`, t: devices[0]!.txs.at(-1)!.t },
];
for (const { d, label, t } of probes) {
  const probe: TxInput = {
    id: `probe-${label}`,
    t,
    amount: 1,
    customer_id: 'probe-card',
    terminal_id: 'shop-0',
    device_id: d.name,
    ip: '198.51.100.1',
  };
  const ms: number[] = [];
  let summary: WindowSummary[] = [];
  for (let i = 0; i < READS; i++) {
    const t0 = performance.now();
    summary = await store.summarize(v3.summaryQueries(probe));
    ms.push(performance.now() - t0);
  }
  const f = v3.compute(probe, summary);
  const cardsIn = (days: number) =>
    new Set([
      ...d.txs.filter((x) => x.t > t - days * DAY_MS && x.t <= t).map((x) => x.customer_id),
      probe.customer_id,
    ]).size;
  const s = summary[device]!;
  const tag = `${prefix}:{device:${d.name}}`;
  let bytes = 0;
  for (const key of [tag, `${tag}:tiles`, `${tag}:newest:customer`])
    bytes += Number((await redis.call('MEMORY', 'USAGE', key)) ?? 0);
  rows.push({
    device: label,
    transactions: d.txs.length,
    read_p50_ms: Number(quantile(ms, 0.5).toFixed(2)),
    read_p99_ms: Number(quantile(ms, 0.99).toFixed(2)),
    raw_records: s.end - s.start,
    tile_aggregates: s.tiles?.count.length ?? 0,
    link_ids_read: s.tiles?.linkId?.length ?? 0,
    store_counted: s.distinct !== undefined,
    state_kib: Math.round(bytes / 1024),
    cards_1d: f[v3.names.indexOf('DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW')],
    cards_7d: f[v3.names.indexOf('DEVICE_ID_NB_CUSTOMERS_7DAY_WINDOW')],
    exact:
      f[v3.names.indexOf('DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW')] === cardsIn(1) &&
      f[v3.names.indexOf('DEVICE_ID_NB_CUSTOMERS_7DAY_WINDOW')] === cardsIn(7),
  });
}
console.table(rows);
if (rows.some((r) => !r.exact)) process.exitCode = 1;
console.log(JSON.stringify(rows));
await redis.quit();
