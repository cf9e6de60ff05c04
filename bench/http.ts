/**
 * POST /v1/score (Redis features + the shipped ensemble) against a bare Fastify route that parses the same
 * JSON and returns a constant, side by side in one run. autocannon runs as a separate process; both targets
 * get the same body (a fresh transaction id per request). Throughput at 64 connections with the CPU time each
 * process spent per request (read from the processes themselves), then latency at a fixed rate and at half the
 * service's own measured capacity (evenly spaced arrivals, bench/paced-load.ts, on both targets), with the
 * service's total-scoring p99 from its histogram.
 *
 *   bash scripts/services.sh up redis && npm run build
 *   npx tsx bench/http.ts [--repeats 3] [--duration 10] [--rate 5000] [--warmup 20] [--profile]
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import {
  autocannon,
  BENCH_EVENTS_TOKEN,
  BENCH_MODEL_DIR,
  type Load,
  metricsText,
  pacedLoad,
  processCpuSeconds,
  quantileMs,
  seedBenchHistory,
  totalStageBuckets,
  waitFor,
} from './lib/service.js';

const { values } = parseArgs({
  options: {
    repeats: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    rate: { type: 'string', default: '5000' },
    connections: { type: 'string', default: '64' },
    warmup: { type: 'string', default: '20' },
    profile: { type: 'boolean', default: false },
  },
});
const REPEATS = Number(values.repeats);
const DURATION = values.duration;
const RATE = values.rate;
const CONNECTIONS = values.connections;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6390';
const EVENTS_TOKEN = BENCH_EVENTS_TOKEN;
const MODEL_DIR = BENCH_MODEL_DIR;
const SERVICE = 18091;
const BARE = 18090;

const body = JSON.stringify({
  transaction_id: '[<id>]',
  timestamp: '2018-08-09T10:00:00Z',
  customer_id: 'bench-C1',
  terminal_id: 'bench-T1',
  amount: 57.16,
});

function start(): { service: ChildProcess; bare: ChildProcess } {
  const prefix = `bench-${Date.now().toString(36)}`;
  const service = spawn(
    process.execPath,
    [
      ...(values.profile ? ['--cpu-prof', '--cpu-prof-dir=bench/results'] : []),
      'dist/src/cli/main.js',
      'serve',
    ],
    {
      env: {
        ...process.env,
        PORT: String(SERVICE),
        HOST: '127.0.0.1',
        REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        EVENTS_TOKEN,
        MODEL_DIR,
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const bare = fork('bench/bare-server.ts', {
    env: { ...process.env, PORT: String(BARE) },
    execArgv: ['--import', 'tsx'],
    stdio: 'ignore',
  });
  return { service, bare };
}

/** CPU seconds (user + system) the target process has used so far. */
async function cpuSeconds(port: number): Promise<number> {
  if (port === BARE) {
    const u = (await (await fetch(`http://127.0.0.1:${BARE}/cpu`)).json()) as {
      user: number;
      system: number;
    };
    return (u.user + u.system) / 1e6;
  }
  return processCpuSeconds(await metricsText(SERVICE));
}

const totalBuckets = async () => totalStageBuckets(await metricsText(SERVICE));
const load = (port: number, extra: string[], duration = DURATION) =>
  autocannon({ port, body, connections: CONNECTIONS, duration, extra });

const { service, bare } = start();
try {
  await Promise.all([
    waitFor(`http://127.0.0.1:${SERVICE}/health/ready`),
    new Promise((r) => bare.once('message', r)),
  ]);
  await seedBenchHistory(SERVICE, EVENTS_TOKEN);
  // Warm both (JIT, connection pools) before measuring: the service's optimizing compiler keeps working on
  // background threads for many seconds (80 functions still being compiled 6 s in), whose CPU would otherwise
  // count against its first requests.
  await load(SERVICE, [], values.warmup);
  await load(BARE, [], '3');
  const rows: {
    repeat: number;
    target: string;
    mode: string;
    load: Load;
    serverP99?: number;
    cpuUsPerRequest?: number;
  }[] = [];
  for (let k = 0; k < REPEATS; k++) {
    let capacity = Number.NaN;
    for (const [target, port] of [
      ['bare', BARE],
      ['service', SERVICE],
    ] as const) {
      const cpu0 = await cpuSeconds(port);
      const saturated = await load(port, []);
      const cpuUsPerRequest = (((await cpuSeconds(port)) - cpu0) * 1e6) / Math.max(1, saturated.requests);
      rows.push({ repeat: k, target, mode: `${CONNECTIONS} connections`, load: saturated, cpuUsPerRequest });
      if (target === 'service') capacity = saturated.rps;
      const before = target === 'service' ? await totalBuckets() : undefined;
      const fixed = await load(port, ['-R', RATE]);
      const serverP99 = before ? quantileMs(before, await totalBuckets(), 0.99) : undefined;
      rows.push({
        repeat: k,
        target,
        mode: `${RATE} req/s`,
        load: fixed,
        ...(serverP99 !== undefined ? { serverP99 } : {}),
      });
    }
    // Half the service's capacity, arrivals evenly spaced (open loop), on both targets at the same rate.
    const half = Math.max(1, Math.round(capacity / 2));
    for (const [target, port] of [
      ['bare', BARE],
      ['service', SERVICE],
    ] as const) {
      const before = target === 'service' ? await totalBuckets() : undefined;
      const paced = await pacedLoad({ port, body, rate: half, duration: DURATION, connections: CONNECTIONS });
      const serverP99 = before ? quantileMs(before, await totalBuckets(), 0.99) : undefined;
      rows.push({
        repeat: k,
        target,
        mode: 'half capacity',
        load: paced,
        ...(serverP99 !== undefined ? { serverP99 } : {}),
      });
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const pick = (target: string, mode: string) => rows.filter((r) => r.target === target && r.mode === mode);
  const summary = {
    scenario: 'http',
    model_dir: MODEL_DIR,
    repeats: REPEATS,
    duration_s: Number(DURATION),
    throughput: {
      bare_rps: med(pick('bare', `${CONNECTIONS} connections`).map((r) => r.load.rps)),
      service_rps: med(pick('service', `${CONNECTIONS} connections`).map((r) => r.load.rps)),
    },
    cpu_per_request_us: {
      bare: med(pick('bare', `${CONNECTIONS} connections`).map((r) => r.cpuUsPerRequest!)),
      service: med(pick('service', `${CONNECTIONS} connections`).map((r) => r.cpuUsPerRequest!)),
    },
    half_capacity: {
      rate: med(pick('service', 'half capacity').map((r) => r.load.rps)),
      server_total_p99_ms: med(pick('service', 'half capacity').map((r) => r.serverP99 ?? Number.NaN)),
      client_p99_ms: med(pick('service', 'half capacity').map((r) => r.load.p99)),
      bare_client_p99_ms: med(pick('bare', 'half capacity').map((r) => r.load.p99)),
    },
    fixed_rate: {
      rate: Number(RATE),
      bare_p99_ms: med(pick('bare', `${RATE} req/s`).map((r) => r.load.p99)),
      service_p99_ms: med(pick('service', `${RATE} req/s`).map((r) => r.load.p99)),
      service_p50_ms: med(pick('service', `${RATE} req/s`).map((r) => r.load.p50)),
      bare_p50_ms: med(pick('bare', `${RATE} req/s`).map((r) => r.load.p50)),
      server_total_p99_ms: med(pick('service', `${RATE} req/s`).map((r) => r.serverP99 ?? Number.NaN)),
    },
    errors: rows.reduce((n, r) => n + r.load.errors + r.load.non2xx, 0),
    rows,
  };
  console.log(JSON.stringify(summary, null, 2));
  const t = summary.throughput;
  const f = summary.fixed_rate;
  const c = summary.cpu_per_request_us;
  const h = summary.half_capacity;
  console.error(
    `CPU per request ratio ${(c.service / c.bare).toFixed(2)} (service ${c.service.toFixed(0)} µs / bare ${c.bare.toFixed(0)} µs); ` +
      `server-side total p99 at half capacity (${Math.round(h.rate)} req/s, evenly spaced) ${h.server_total_p99_ms.toFixed(3)} ms ` +
      `(client p99: service ${h.client_p99_ms.toFixed(1)} ms, bare ${h.bare_client_p99_ms.toFixed(1)} ms)`,
  );
  console.error(
    `throughput ratio ${(t.service_rps / t.bare_rps).toFixed(2)} (service ${Math.round(t.service_rps)} / bare ${Math.round(t.bare_rps)} req/s); ` +
      `p99 at ${RATE}/s: service ${f.service_p99_ms} ms vs bare ${f.bare_p99_ms} ms (×${(f.service_p99_ms / f.bare_p99_ms).toFixed(2)}); ` +
      `server-side total p99 ${f.server_total_p99_ms.toFixed(3)} ms`,
  );
} finally {
  service.kill('SIGTERM');
  bare.kill('SIGTERM');
}
