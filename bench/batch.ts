/**
 * Issue 17, batches sized to succeed: `POST /v1/score/batch` with BATCH_MAX_TRANSACTIONS (1,000) transactions
 * of entities with history, under the default configuration, on Redis. Reports the server's own timings and
 * the degraded count, and checks every transaction's features against scoring it alone. The baseline, in the
 * same run: the same 1,000 transactions scored one request at a time (the sum of their server-side totals).
 *
 *   bash scripts/services.sh up redis && set -a && . .services/env && set +a
 *   npx tsx bench/batch.ts [--repeats 3] [--customers 1000] [--history 20]
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { createService } from '../src/wiring/service.js';

const { values } = parseArgs({
  options: {
    repeats: { type: 'string', default: '3' },
    customers: { type: 'string', default: '1000' },
    history: { type: 'string', default: '20' },
  },
});
const REPEATS = Number(values.repeats);
const N = Number(values.customers);
const HISTORY = Number(values.history);
const EVENTS_TOKEN = 'bench-batch-events-token-0123';
const T = Date.parse('2018-08-09T10:00:00Z');
const prefix = `bench-batch-${Date.now().toString(36)}`;

const service = await createService(
  loadConfig({
    ...process.env,
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6390',
    REDIS_KEY_PREFIX: prefix,
    REDIS_CLUSTER_NODES: '',
    KAFKA_BROKERS: '',
    EVENTS_TOKEN,
    MODEL_DIR: process.env.MODEL_DIR ?? 'models',
    LOG_LEVEL: 'warn',
  }),
  { logger: pino({ level: 'warn' }) },
);

// History: every customer and terminal has HISTORY transactions in its windows.
const events = [];
for (let c = 0; c < N; c++)
  for (let h = 0; h < HISTORY; h++)
    events.push({
      type: 'transaction',
      transaction_id: `h-${c}-${h}`,
      timestamp: new Date(T - (h + 1) * 7 * 3600_000 - c * 1000).toISOString(),
      customer_id: `C${c}`,
      terminal_id: `T${(c * 7 + h) % N}`,
      amount: 10 + ((c * 31 + h * 17) % 400),
    });
for (let i = 0; i < events.length; i += 2_000) {
  const r = await service.app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { authorization: `Bearer ${EVENTS_TOKEN}` },
    payload: { events: events.slice(i, i + 2_000) },
  });
  if (r.statusCode !== 200) throw new Error(`preload: ${r.statusCode} ${r.body}`);
}

const tx = (tag: string, c: number) => ({
  transaction_id: `${tag}-${c}`,
  timestamp: new Date(T).toISOString(),
  customer_id: `C${c}`,
  terminal_id: `T${(c * 3) % N}`,
  amount: 5 + ((c * 13) % 500),
});

interface Result {
  degraded: boolean;
  degraded_reasons?: string[];
  features: Record<string, number>;
  timings_ms: { features: number; inference: number; total: number };
}

const rows: Record<string, number>[] = [];
let mismatches = 0;
for (let k = 0; k < REPEATS; k++) {
  const batch = Array.from({ length: N }, (_, c) => tx(`b${k}`, c));
  const res = await service.app.inject({
    method: 'POST',
    url: '/v1/score/batch?explain=true',
    payload: { transactions: batch },
  });
  if (res.statusCode !== 200) throw new Error(`batch: ${res.statusCode} ${res.body}`);
  const results = res.json().results as Result[];
  const degraded = results.filter((r) => r.degraded);
  let singleTotal = 0;
  for (let c = 0; c < N; c++) {
    const one = await service.app.inject({
      method: 'POST',
      url: '/v1/score?explain=true',
      payload: tx(`s${k}`, c),
    });
    const r = one.json() as Result;
    singleTotal += r.timings_ms.total;
    for (const [name, value] of Object.entries(r.features))
      if (Math.abs(value - results[c]!.features[name]!) > 1e-9 * Math.max(1, Math.abs(value))) {
        if (mismatches++ < 5)
          console.error(`mismatch ${c} ${name}: single ${value}, batch ${results[c]!.features[name]}`);
      }
  }
  rows.push({
    repeat: k,
    transactions: N,
    degraded: degraded.length,
    batch_features_ms: results[0]!.timings_ms.features,
    batch_inference_ms: results[0]!.timings_ms.inference,
    batch_total_ms: Math.max(...results.map((r) => r.timings_ms.total)),
    singles_total_ms: singleTotal,
  });
  if (degraded.length) console.error(`degraded: ${JSON.stringify(degraded[0]!.degraded_reasons)}`);
}
await service.close();

const med = (key: string) =>
  [...rows.map((r) => r[key]!)].sort((a, b) => a - b)[Math.floor(rows.length / 2)]!;
const summary = {
  scenario: 'batch',
  transactions: N,
  history_per_entity: HISTORY,
  degraded: rows.reduce((n, r) => n + r.degraded!, 0),
  feature_mismatches_vs_single: mismatches,
  batch_total_ms: med('batch_total_ms'),
  singles_total_ms: med('singles_total_ms'),
  rows,
};
console.log(JSON.stringify(summary, null, 2));
console.error(
  `batch of ${N}: total ${summary.batch_total_ms.toFixed(1)} ms vs ${summary.singles_total_ms.toFixed(1)} ms scored one by one ` +
    `(ratio ${(summary.batch_total_ms / summary.singles_total_ms).toFixed(2)}); ${summary.degraded} degraded; ` +
    `${mismatches} feature values differing from single scoring`,
);
