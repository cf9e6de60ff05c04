/**
 * What the HTTP benches share: waiting for a server, the history the scoring benches seed, one autocannon run
 * as a separate process, and the figures read from a service's own /metrics.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The models the benches serve: MODEL_DIR, else the shipped ones, else the test fixtures (a fresh checkout). */
export const BENCH_MODEL_DIR =
  process.env.MODEL_DIR ??
  (existsSync('models/fraudscore') && readdirSync('models/fraudscore').length
    ? 'models'
    : 'test/fixtures/models');

/** The benches preload history through POST /v1/events, which a Redis-backed service takes only with a token. */
export const BENCH_EVENTS_TOKEN = 'bench-events-token-0123456789';

/** Resolves once `url` answers 2xx; throws after `tries` × 100 ms. */
export async function waitFor(url: string, tries = 300): Promise<void> {
  for (let i = 0; i < tries; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

/** The customer and terminal of the benches' body (bench-C1, bench-T1): 60 and 40 earlier transactions. */
export async function seedBenchHistory(port: number, eventsToken: string): Promise<void> {
  const t0 = Date.parse('2018-08-09T10:00:00Z');
  const events = [
    ...Array.from({ length: 60 }, (_, i) => ({
      type: 'transaction',
      transaction_id: `seed-c${i}`,
      timestamp: new Date(t0 - (i + 1) * 11 * 3600_000).toISOString(),
      customer_id: 'bench-C1',
      terminal_id: `bench-T${i + 2}`,
      amount: 20 + i,
    })),
    ...Array.from({ length: 40 }, (_, i) => ({
      type: 'transaction',
      transaction_id: `seed-t${i}`,
      timestamp: new Date(t0 - (8 + i * 0.7) * 86_400_000).toISOString(),
      customer_id: `bench-C${i + 2}`,
      terminal_id: 'bench-T1',
      amount: 30 + i,
    })),
  ];
  const r = await fetch(`http://127.0.0.1:${port}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${eventsToken}` },
    body: JSON.stringify({ events }),
  });
  if (!r.ok) throw new Error(`seeding failed: ${r.status} ${await r.text()}`);
}

export interface Load {
  /** Requests per second, averaged over the run. */
  rps: number;
  requests: number;
  /** Client-side latency, ms. */
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

/**
 * One autocannon run against POST /v1/score of `port`, in its own process so that it takes no CPU from the
 * bench's targets' event loops. `body` may hold `[<id>]`, replaced by a fresh id per request (`-I`).
 */
export async function autocannon(o: {
  port: number;
  body: string;
  connections: string;
  duration: string;
  extra?: readonly string[];
}): Promise<Load> {
  const { stdout, stderr } = await run(
    process.execPath,
    [
      'node_modules/autocannon/autocannon.js',
      '-j',
      '-c',
      o.connections,
      '-d',
      o.duration,
      '-m',
      'POST',
      '-H',
      'content-type=application/json',
      '-b',
      o.body,
      '-I',
      ...(o.extra ?? []),
      `http://127.0.0.1:${o.port}/v1/score`,
    ],
    { maxBuffer: 1 << 26 },
  );
  if (!stdout.trim()) throw new Error(`autocannon printed nothing: ${stderr}`);
  const r = JSON.parse(stdout);
  return {
    rps: r.requests.average,
    requests: r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
  };
}

/**
 * An open-loop load at a constant `rate` (bench/paced-load.ts, in its own process): arrivals spaced evenly, as
 * production traffic arrives, instead of autocannon's `-R` bursts at each second's start. Latency counts from
 * when each request was due.
 */
export async function pacedLoad(o: {
  port: number;
  body: string;
  rate: number;
  duration: string;
  connections: string;
}): Promise<Load> {
  const { stdout, stderr } = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      'bench/paced-load.ts',
      '--port',
      String(o.port),
      '--rate',
      String(o.rate),
      '--duration',
      o.duration,
      '--connections',
      o.connections,
      '--body',
      o.body,
    ],
    { maxBuffer: 1 << 26 },
  );
  if (!stdout.trim()) throw new Error(`paced-load printed nothing: ${stderr}`);
  return JSON.parse(stdout) as Load;
}

/** A service's /metrics text. */
export async function metricsText(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

/** CPU seconds (user + system) of the process, from its metrics (a build before issue 21 prefixes them). */
export function processCpuSeconds(metrics: string): number {
  let total = 0;
  for (const m of metrics.matchAll(/^(?:fraudscore_)?process_cpu_(?:user|system)_seconds_total (\S+)/gm))
    total += Number(m[1]);
  return total;
}

/** Cumulative bucket counts of fraudscore_scoring_stage_duration_seconds{stage="total"}, by upper bound (s). */
export function totalStageBuckets(metrics: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of metrics.matchAll(
    /^fraudscore_scoring_stage_duration_seconds_bucket\{(?=[^}]*stage="total")[^}]*le="([^"]+)"[^}]*\} (\d+)/gm,
  ))
    out.set(m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]), Number(m[2]));
  return out;
}

/** The q-quantile (ms) of the observations between two scrapes of one histogram, interpolated in its bucket. */
export function quantileMs(before: Map<number, number>, after: Map<number, number>, q: number): number {
  const les = [...after.keys()].sort((a, b) => a - b);
  const counts = les.map((le) => (after.get(le) ?? 0) - (before.get(le) ?? 0));
  const rank = q * counts.at(-1)!;
  let prevLe = 0;
  let prevCount = 0;
  for (let i = 0; i < les.length; i++) {
    if (counts[i]! >= rank) {
      const le = Number.isFinite(les[i]!) ? les[i]! : prevLe;
      return (prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, counts[i]! - prevCount)) * 1000;
    }
    prevLe = les[i]!;
    prevCount = counts[i]!;
  }
  return Number.NaN;
}
