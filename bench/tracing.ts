/**
 * What OpenTelemetry tracing costs `POST /v1/score`: the same built service (`fraudscore serve`, the shipped
 * ensemble) in four processes side by side — tracing off (OTEL_TRACES_EXPORTER unset); tracing on at 100 %
 * sampling with no collector (the OTLP endpoint is a closed port); tracing on with every trace sampled out
 * (OTEL_TRACES_SAMPLER=always_off); and tracing on at 100 % exporting to a collector stand-in that takes every
 * span — with the same requests (no traceparent: every sampled request is a trace of 8 spans).
 * `--baseline <dir>` adds a fourth process first: a build of the code from before tracing existed (an export of
 * that commit, built, with node_modules), which shows what tracing off costs.
 *
 * Each repeat loads every process at the same fixed rate at the same time, and reads each process's own CPU per
 * request (its `process_cpu_seconds_total` over its `fraudscore_http_request_duration_seconds_count`, scraped
 * around the run): whatever else the machine does weighs on all of them alike, and the ratio to the first process
 * is taken within the repeat (the median of those is reported). Then throughput at 64 connections, one process at
 * a time. Features come from the in-memory store unless --redis (REDIS_URL).
 *
 *   npm run build
 *   npx tsx bench/tracing.ts [--repeats 5] [--duration 10] [--rate 300] [--redis] [--baseline <dir>]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import {
  autocannon,
  BENCH_EVENTS_TOKEN,
  BENCH_MODEL_DIR,
  type Load,
  seedBenchHistory,
  waitFor,
} from './lib/service.js';

const { values } = parseArgs({
  options: {
    repeats: { type: 'string', default: '5' },
    duration: { type: 'string', default: '10' },
    rate: { type: 'string', default: '300' },
    connections: { type: 'string', default: '64' },
    redis: { type: 'boolean', default: false },
    baseline: { type: 'string' },
  },
});
const REPEATS = Number(values.repeats);
const DURATION = values.duration;
const RATE = values.rate;
const CONNECTIONS = values.connections;
const EVENTS_TOKEN = BENCH_EVENTS_TOKEN;
const MODEL_DIR = BENCH_MODEL_DIR;

const body = JSON.stringify({
  transaction_id: '[<id>]',
  timestamp: '2018-08-09T10:00:00Z',
  customer_id: 'bench-C1',
  terminal_id: 'bench-T1',
  amount: 57.16,
});

/** A collector stand-in: takes every OTLP/HTTP export, counts bytes, answers an empty success. */
async function collector() {
  let bytes = 0;
  let exports = 0;
  const server = createServer((req, res) => {
    req.on('data', (c: Buffer) => {
      bytes += c.length;
    });
    req.on('end', () => {
      exports++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    stats: () => ({ exports, bytes }),
    close: () => server.close(),
  };
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface Mode {
  readonly name: string;
  readonly port: number;
  readonly env: Record<string, string>;
  /** Another build to run (its directory); this one's dist otherwise. */
  readonly cwd?: string;
}

function start(mode: Mode): ChildProcess {
  const prefix = `bench-tr-${mode.port}-${Date.now().toString(36)}`;
  const env: Record<string, string | undefined> = {
    ...process.env,
    PORT: String(mode.port),
    HOST: '127.0.0.1',
    MODEL_DIR,
    EVENTS_TOKEN,
    LOG_LEVEL: 'info',
    ...(values.redis
      ? { REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6390', REDIS_KEY_PREFIX: prefix }
      : {}),
    ...mode.env,
  };
  for (const k of Object.keys(env)) if (k.startsWith('OTEL_') && !(k in mode.env)) delete env[k];
  return spawn(process.execPath, ['dist/src/cli/main.js', 'serve'], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
    ...(mode.cwd ? { cwd: mode.cwd } : {}),
  });
}

const load = (port: number, extra: string[], duration = DURATION) =>
  autocannon({ port, body, connections: CONNECTIONS, duration, extra });

/** The process's CPU seconds (user + system) and the /v1/score requests it answered, from its own /metrics. */
async function counters(port: number): Promise<{ cpu: number; requests: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let cpu = Number.NaN;
  let requests = 0;
  for (const line of text.split('\n')) {
    // (a baseline build from before issue 21 prefixes it fraudscore_)
    if (/^(fraudscore_)?process_cpu_seconds_total /.test(line)) cpu = Number(line.split(' ')[1]);
    if (
      line.startsWith('fraudscore_http_request_duration_seconds_count{') &&
      line.includes('route="/v1/score"')
    )
      requests += Number(line.split(' ').at(-1));
  }
  return { cpu, requests };
}

const sink = await collector();
const modes: Mode[] = [
  ...(values.baseline ? [{ name: 'before tracing', port: 18100, env: {}, cwd: values.baseline }] : []),
  { name: 'off', port: 18101, env: {} },
  {
    name: 'on, no collector',
    port: 18102,
    env: {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await closedPort()}`,
    },
  },
  {
    // Spans are created (non-recording) and contexts propagated, nothing is recorded or exported.
    name: 'on, sampled out',
    port: 18104,
    env: {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_TRACES_SAMPLER: 'always_off',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sink.port}`,
    },
  },
  {
    name: 'on, collector',
    port: 18103,
    env: { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sink.port}` },
  },
];
const children = modes.map(start);
try {
  await Promise.all(modes.map((m) => waitFor(`http://127.0.0.1:${m.port}/health/ready`)));
  for (const m of modes) await seedBenchHistory(m.port, EVENTS_TOKEN);
  // Warm each (JIT, pools) before measuring.
  for (const m of modes) await load(m.port, [], '3');
  const rows: { repeat: number; mode: string; run: string; load: Load; cpuUsPerRequest?: number }[] = [];
  const baseline = modes[0]!.name;
  for (let k = 0; k < REPEATS; k++) {
    // CPU per request: every process under the same fixed rate at the same time, so whatever else the machine
    // does weighs on all of them alike; the ratio to the baseline is taken within the repeat.
    const before = await Promise.all(modes.map((m) => counters(m.port)));
    const loads = await Promise.all(modes.map((m) => load(m.port, ['-R', RATE])));
    const after = await Promise.all(modes.map((m) => counters(m.port)));
    modes.forEach((m, i) => {
      const cpuUsPerRequest =
        ((after[i]!.cpu - before[i]!.cpu) * 1e6) / (after[i]!.requests - before[i]!.requests);
      rows.push({
        repeat: k,
        mode: m.name,
        run: `${RATE} req/s each, together`,
        load: loads[i]!,
        cpuUsPerRequest,
      });
    });
    // Throughput: one at a time, alternating (noisier: the machine changes between runs).
    for (const m of modes)
      rows.push({
        repeat: k,
        mode: m.name,
        run: `${CONNECTIONS} connections`,
        load: await load(m.port, []),
      });
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const of = (mode: string, run: string) => rows.filter((r) => r.mode === mode && r.run === run);
  const FIXED = `${RATE} req/s each, together`;
  const THROUGHPUT = `${CONNECTIONS} connections`;
  /** Per repeat, this mode's value over the baseline's; the median of those. */
  const pairedRatio = (mode: string, run: string, value: (r: (typeof rows)[number]) => number) => {
    const base = of(baseline, run);
    return med(of(mode, run).map((r, k) => value(r) / value(base[k]!)));
  };
  const summary = Object.fromEntries(
    modes.map((m) => {
      const fixed = of(m.name, FIXED);
      return [
        m.name,
        {
          cpu_us_per_request: med(fixed.map((r) => r.cpuUsPerRequest!)),
          p50_ms: med(fixed.map((r) => r.load.p50)),
          p99_ms: med(fixed.map((r) => r.load.p99)),
          achieved_rps: med(fixed.map((r) => r.load.rps)),
          max_rps: med(of(m.name, THROUGHPUT).map((r) => r.load.rps)),
        },
      ];
    }),
  );
  const ratios = Object.fromEntries(
    modes.map((m) => [
      m.name,
      {
        cpu_per_request: pairedRatio(m.name, FIXED, (r) => r.cpuUsPerRequest!),
        max_rps: pairedRatio(m.name, THROUGHPUT, (r) => r.load.rps),
      },
    ]),
  );
  console.log(
    JSON.stringify(
      {
        scenario: 'tracing',
        model_dir: MODEL_DIR,
        store: values.redis ? 'redis' : 'memory',
        repeats: REPEATS,
        duration_s: Number(DURATION),
        rate_each: Number(RATE),
        baseline,
        ratios,
        summary,
        collector: sink.stats(),
        errors: rows.reduce((n, r) => n + r.load.errors + r.load.non2xx, 0),
        rows,
      },
      null,
      2,
    ),
  );
  for (const [name, r] of Object.entries(ratios))
    console.error(
      `${name}: CPU per request ×${r.cpu_per_request.toFixed(3)} of ${baseline} (median ${summary[name]!.cpu_us_per_request.toFixed(0)} µs), ` +
        `throughput at ${CONNECTIONS} connections ×${r.max_rps.toFixed(3)} (${Math.round(summary[name]!.max_rps)} req/s), ` +
        `p99 at ${RATE}/s ${summary[name]!.p99_ms} ms`,
    );
} finally {
  for (const c of children) c.kill('SIGTERM');
  sink.close();
}
