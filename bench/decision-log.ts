/**
 * What the decision log (issue 18) costs.
 *
 * Memory: decisions recorded through RedisDecisionLog under a fresh prefix, then Redis's own MEMORY USAGE of
 * every key it wrote, per recorded decision: the transaction hashes (one per transaction, a field per version),
 * the per-version day counters (every decision by score bin: their size follows the occupied bins, not the
 * decisions), and — once 10 % of the transactions are labelled — the label hashes and the counters. Once with the active version alone, once with a shadow too (two decisions per transaction).
 *
 * CPU: the built service (`fraudscore serve`, the shipped ensemble, features on Redis) in two processes side by
 * side, DECISION_LOG=false and DECISION_LOG=true, under the same fixed rate at the same time; each process's own
 * CPU per request (its `process_cpu_seconds_total` over its `/v1/score` count, scraped around the run), the
 * ratio taken within each repeat (median reported), as bench/tracing.ts. Redis's own CPU is not in it: the
 * memory part gives the commands per decision instead.
 *
 *   npm run build
 *   npx tsx bench/decision-log.ts [--decisions 50000] [--repeats 5] [--duration 10] [--rate 300] [--only memory|cpu]
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { systemClock } from '../src/adapters/clock/system-clock.js';
import { RedisDecisionLog } from '../src/adapters/redis/redis-decision-log.js';
import { DAY_MS } from '../src/domain/features/time.js';
import type { Decision } from '../src/domain/scoring/decision.js';
import type { DecisionEntry } from '../src/ports/decision-log.js';
import { autocannon, BENCH_EVENTS_TOKEN, BENCH_MODEL_DIR, waitFor } from './lib/service.js';

const { values } = parseArgs({
  options: {
    decisions: { type: 'string', default: '50000' },
    repeats: { type: 'string', default: '5' },
    duration: { type: 'string', default: '10' },
    rate: { type: 'string', default: '300' },
    connections: { type: 'string', default: '64' },
    only: { type: 'string' },
  },
});
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6390';
const EVENTS_TOKEN = BENCH_EVENTS_TOKEN;
const MODEL_DIR = BENCH_MODEL_DIR;

async function keys(redis: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, got] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
    cursor = next;
    out.push(...got);
  } while (cursor !== '0');
  return out;
}

async function bytes(redis: Redis, pattern: string): Promise<{ keys: number; bytes: number }> {
  const ks = await keys(redis, pattern);
  let total = 0;
  for (let i = 0; i < ks.length; i += 1000) {
    const p = redis.pipeline();
    for (const k of ks.slice(i, i + 1000)) p.memory('USAGE', k, 'SAMPLES', '0');
    for (const [err, n] of (await p.exec())!) if (!err) total += Number(n);
  }
  return { keys: ks.length, bytes: total };
}

async function memory(shadow: boolean) {
  const redis = new Redis(REDIS_URL);
  const prefix = `bench-dl-${Date.now().toString(36)}`;
  const log = new RedisDecisionLog(redis, { prefix, clock: systemClock, horizonMs: 120 * DAY_MS });
  const n = Number(values.decisions);
  const now = Date.now();
  // Realistic ids: 36-character UUIDs, scores from a skewed distribution, decisions over one day.
  const entries: DecisionEntry[] = Array.from({ length: n }, () => {
    const score = Math.random() ** 6;
    const decision: Decision = score >= 0.38 ? 'decline' : score >= 0.08 ? 'review' : 'approve';
    const at = now - Math.floor(Math.random() * DAY_MS);
    return {
      transactionId: crypto.randomUUID(),
      decisions: [
        { version: '1', role: 'active', score, decision, at },
        ...(shadow ? [{ version: '2', role: 'shadow' as const, score: score * 0.9, decision, at }] : []),
      ],
    };
  });
  for (let i = 0; i < n; i += 500) await log.record('fraudscore', entries.slice(i, i + 500));
  const decisions = n * (shadow ? 2 : 1);
  const tx = await bytes(redis, `${prefix}:dl:*`);
  const decided = await bytes(redis, `{${prefix}:perf:*}:c:*`);
  // 10 % labelled (1 in 10 of them fraud): what labels add, per labelled decision.
  const labelled = entries.filter((_, i) => i % 10 === 0);
  for (let i = 0; i < labelled.length; i += 500)
    await log.label(
      'fraudscore',
      labelled.slice(i, i + 500).map((e, k) => ({
        transactionId: e.transactionId,
        fraud: k % 10 === 0,
        transactionAt: now,
        labelledAt: now,
      })),
    );
  const labels = await bytes(redis, `{${prefix}:perf:*}:l:*`);
  const counters = await bytes(redis, `{${prefix}:perf:*}:c:*`);
  for (const k of await keys(redis, `*${prefix}*`)) await redis.unlink(k);
  redis.disconnect();
  const per = (b: number, d: number) => Math.round((b / d) * 10) / 10;
  return {
    versions: shadow ? 2 : 1,
    transactions: n,
    decisions,
    transaction_hashes: { ...tx, bytes_per_decision: per(tx.bytes, decisions) },
    counters_before_labels: { ...decided, bytes_per_decision: per(decided.bytes, decisions) },
    bytes_per_unlabelled_decision: per(tx.bytes + decided.bytes, decisions),
    labelled_decisions: labelled.length * (shadow ? 2 : 1),
    label_hashes: {
      ...labels,
      bytes_per_labelled_decision: per(labels.bytes, labelled.length * (shadow ? 2 : 1)),
    },
    counters,
  };
}

const body = JSON.stringify({
  transaction_id: '[<id>]',
  timestamp: '2018-08-09T10:00:00Z',
  customer_id: 'bench-C1',
  terminal_id: 'bench-T1',
  amount: 57.16,
});

async function load(port: number, extra: string[], duration = values.duration) {
  const l = await autocannon({ port, body, connections: values.connections, duration, extra });
  return { rps: l.rps, p50: l.p50, p99: l.p99, errors: l.errors + l.non2xx };
}

async function counters(port: number): Promise<{ cpu: number; requests: number; dropped: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let cpu = Number.NaN;
  let requests = 0;
  let dropped = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('process_cpu_seconds_total ')) cpu = Number(line.split(' ')[1]);
    if (
      line.startsWith('fraudscore_http_request_duration_seconds_count{') &&
      line.includes('route="/v1/score"')
    )
      requests += Number(line.split(' ').at(-1));
    if (line.startsWith('fraudscore_decision_log_dropped_total{')) dropped += Number(line.split(' ').at(-1));
  }
  return { cpu, requests, dropped };
}

async function cpu() {
  const modes = [
    { name: 'decision log off', port: 18121, env: { DECISION_LOG: 'false' } },
    { name: 'decision log on', port: 18122, env: { DECISION_LOG: 'true' } },
  ];
  const children = modes.map((m) =>
    spawn(process.execPath, ['dist/src/cli/main.js', 'serve'], {
      env: {
        ...process.env,
        PORT: String(m.port),
        HOST: '127.0.0.1',
        MODEL_DIR,
        EVENTS_TOKEN,
        LOG_LEVEL: 'info',
        REDIS_URL,
        REDIS_KEY_PREFIX: `bench-dlc-${m.port}-${Date.now().toString(36)}`,
        ...m.env,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
  try {
    await Promise.all(modes.map((m) => waitFor(`http://127.0.0.1:${m.port}/health/ready`)));
    for (const m of modes) await load(m.port, [], '3');
    const rows: {
      repeat: number;
      mode: string;
      cpuUs: number;
      load: Awaited<ReturnType<typeof load>>;
    }[] = [];
    for (let k = 0; k < Number(values.repeats); k++) {
      const before = await Promise.all(modes.map((m) => counters(m.port)));
      const loads = await Promise.all(modes.map((m) => load(m.port, ['-R', values.rate])));
      const after = await Promise.all(modes.map((m) => counters(m.port)));
      modes.forEach((m, i) =>
        rows.push({
          repeat: k,
          mode: m.name,
          cpuUs: ((after[i]!.cpu - before[i]!.cpu) * 1e6) / (after[i]!.requests - before[i]!.requests),
          load: loads[i]!,
        }),
      );
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const of = (mode: string) => rows.filter((r) => r.mode === mode);
    const base = of(modes[0]!.name);
    const dropped = (await counters(modes[1]!.port)).dropped;
    return {
      rate_each: Number(values.rate),
      repeats: Number(values.repeats),
      summary: Object.fromEntries(
        modes.map((m) => [
          m.name,
          {
            cpu_us_per_request: Math.round(med(of(m.name).map((r) => r.cpuUs))),
            ratio_to_off: Math.round(med(of(m.name).map((r, k) => r.cpuUs / base[k]!.cpuUs)) * 1000) / 1000,
            p50_ms: med(of(m.name).map((r) => r.load.p50)),
            p99_ms: med(of(m.name).map((r) => r.load.p99)),
            achieved_rps: med(of(m.name).map((r) => r.load.rps)),
          },
        ]),
      ),
      decisions_dropped: dropped,
      errors: rows.reduce((n, r) => n + r.load.errors, 0),
      rows,
    };
  } finally {
    for (const c of children) c.kill('SIGTERM');
  }
}

const out: Record<string, unknown> = { scenario: 'decision-log', model_dir: MODEL_DIR };
if (values.only !== 'cpu') out.memory = [await memory(false), await memory(true)];
if (values.only !== 'memory') out.cpu = await cpu();
console.log(JSON.stringify(out, null, 2));
