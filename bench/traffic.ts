/**
 * Issue 17, traffic that looks like production: 50,000 customers and 10,000 terminals whose popularity follows
 * Zipf's law (a few hot terminals, a long tail), 30 days of history preloaded, then `POST /v1/score` at 64
 * connections against `fraudscore serve` on Redis and on the 3-node Redis Cluster, one after the other in the
 * same run. Reports throughput, client p50/p99, the server's own total p50/p99, degraded answers and the CPU
 * time per request read from the service process itself. The baseline in the same run is the bare Fastify
 * route of bench/http.ts, on the same bodies.
 *
 *   bash scripts/services.sh up redis redis-cluster && set -a && . .services/env && set +a && npm run build
 *   npx tsx bench/traffic.ts [--duration 10] [--customers 50000] [--terminals 10000] [--history 300000]
 *
 * BENCH_SERVICE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" passes Node flags to the service (Node refuses
 * --cpu-prof in NODE_OPTIONS); the profile covers the history preload too.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { DAY_MS } from '../src/domain/features/time.js';
import { metricsText, processCpuSeconds, quantileMs, totalStageBuckets, waitFor } from './lib/service.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    customers: { type: 'string', default: '50000' },
    terminals: { type: 'string', default: '10000' },
    history: { type: 'string', default: '300000' },
    connections: { type: 'string', default: '64' },
  },
});
const CUSTOMERS = Number(values.customers);
const TERMINALS = Number(values.terminals);
const HISTORY = Number(values.history);
const DURATION = Number(values.duration);
const CONNECTIONS = Number(values.connections);
const EVENTS_TOKEN = 'bench-traffic-events-token-0123';
const T = Date.parse('2018-08-09T10:00:00Z');

/** Deterministic generator (mulberry32), so every store and the baseline see the same traffic. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Ranks 0..n-1 drawn with P(rank k) ∝ 1/(k+1)^s, by inverting the cumulative weights. */
function zipf(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) {
    sum += 1 / (k + 1) ** s;
    cdf[k] = sum;
  }
  return () => {
    const u = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

function traffic(seed: number) {
  const random = rng(seed);
  const customer = zipf(CUSTOMERS, 0.8, random);
  const terminal = zipf(TERMINALS, 1.0, random);
  return (id: string, t: number) => ({
    transaction_id: id,
    timestamp: new Date(t).toISOString(),
    customer_id: `C${customer()}`,
    terminal_id: `T${terminal()}`,
    amount: Math.round(random() * 30000) / 100,
  });
}

function degradedCount(text: string): number {
  let n = 0;
  for (const m of text.matchAll(/^fraudscore_degraded_total\{[^}]*\} (\S+)/gm)) n += Number(m[1]);
  return n;
}

async function load(port: number, seed: number) {
  const next = traffic(seed);
  let i = 0;
  const r = await autocannon({
    url: `http://127.0.0.1:${port}/v1/score`,
    connections: CONNECTIONS,
    duration: DURATION,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => ({ ...req, body: JSON.stringify(next(`tr-${seed}-${i++}`, T + i)) }),
      },
    ],
  });
  return {
    rps: r.requests.average,
    total: r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx,
  };
}

async function scenario(name: string, env: Record<string, string>, port: number) {
  const prefix = `bench-traffic-${Date.now().toString(36)}`;
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_SERVICE_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      'dist/src/cli/main.js',
      'serve',
    ],
    {
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        PORT: String(port),
        REDIS_KEY_PREFIX: prefix,
        EVENTS_TOKEN,
        MODEL_DIR: process.env.MODEL_DIR ?? 'models',
        KAFKA_BROKERS: '',
        LOG_LEVEL: 'warn',
        REDIS_URL: '',
        REDIS_CLUSTER_NODES: '',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  try {
    await waitFor(`http://127.0.0.1:${port}/health/ready`);
    const history = traffic(1);
    const step = (30 * DAY_MS) / HISTORY;
    for (let i = 0; i < HISTORY; i += 2000) {
      const events = Array.from({ length: Math.min(2000, HISTORY - i) }, (_, k) => ({
        type: 'transaction',
        ...history(`h-${i + k}`, T - 30 * DAY_MS + (i + k) * step),
      }));
      const r = await fetch(`http://127.0.0.1:${port}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${EVENTS_TOKEN}` },
        body: JSON.stringify({ events }),
      });
      if (!r.ok) throw new Error(`${name} preload: ${r.status} ${await r.text()}`);
    }
    await load(port, 2); // warm-up
    const before = await metricsText(port);
    const result = await load(port, 3);
    const after = await metricsText(port);
    return {
      store: name,
      ...result,
      server_p50_ms: quantileMs(totalStageBuckets(before), totalStageBuckets(after), 0.5),
      server_p99_ms: quantileMs(totalStageBuckets(before), totalStageBuckets(after), 0.99),
      degraded: degradedCount(after) - degradedCount(before),
      cpu_us_per_request:
        ((processCpuSeconds(after) - processCpuSeconds(before)) * 1e6) / Math.max(1, result.total),
    };
  } finally {
    child.kill('SIGTERM');
  }
}

const bare = fork('bench/bare-server.ts', {
  env: { ...process.env, PORT: '18190' },
  execArgv: ['--import', 'tsx'],
  stdio: 'ignore',
});
try {
  await new Promise((r) => bare.once('message', r));
  const cpu = async () => {
    const u = (await (await fetch('http://127.0.0.1:18190/cpu')).json()) as { user: number; system: number };
    return (u.user + u.system) / 1e6;
  };
  await load(18190, 2);
  const c0 = await cpu();
  const b = await load(18190, 3);
  const baseline = {
    store: 'bare route',
    ...b,
    cpu_us_per_request: (((await cpu()) - c0) * 1e6) / Math.max(1, b.total),
  };
  const rows: (typeof baseline & { server_p50_ms?: number; server_p99_ms?: number; degraded?: number })[] = [
    baseline,
  ];
  if (process.env.REDIS_URL) rows.push(await scenario('redis', { REDIS_URL: process.env.REDIS_URL }, 18191));
  if (process.env.REDIS_CLUSTER_NODES)
    rows.push(
      await scenario('redis cluster', { REDIS_CLUSTER_NODES: process.env.REDIS_CLUSTER_NODES }, 18192),
    );
  console.log(
    JSON.stringify(
      { scenario: 'traffic', customers: CUSTOMERS, terminals: TERMINALS, history: HISTORY, rows },
      null,
      2,
    ),
  );
  for (const r of rows.slice(1))
    console.error(
      `${r.store}: throughput ratio ${(r.rps / baseline.rps).toFixed(2)} (${Math.round(r.rps)} / ${Math.round(baseline.rps)} req/s), ` +
        `CPU per request ratio ${(r.cpu_us_per_request / baseline.cpu_us_per_request).toFixed(2)} ` +
        `(${r.cpu_us_per_request.toFixed(0)} / ${baseline.cpu_us_per_request.toFixed(0)} µs), client p99 ${r.p99} ms, ` +
        `server p50/p99 ${r.server_p50_ms?.toFixed(2)}/${r.server_p99_ms?.toFixed(2)} ms, degraded ${r.degraded}`,
    );
} finally {
  bare.kill('SIGTERM');
}
