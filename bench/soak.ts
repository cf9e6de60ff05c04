/**
 * Soak (issue 9; a benchmark, not a CI test): N minutes at a steady request rate against the `fraudscore serve`
 * wiring (createService + listen on 127.0.0.1, audit log at info level to --log-file), with a model swap 1 ↔ 2
 * through the admin API every --swap-every seconds. The load comes from autocannon (fixed rate, latencies
 * corrected for coordinated omission) in a child process, one run per minute, so each minute has its own
 * request count, errors and p99. Result JSON on stdout: errors, p99 per minute, RSS at start and end, swaps.
 *
 *   bash scripts/services.sh up redis && set -a && . .services/env && set +a     # optional: without REDIS_URL
 *   npx tsx bench/soak.ts [--minutes 10] [--rate 1000] [--connections 32] [--swap-every 30] [--log-file PATH]
 *
 * Features come from Redis when REDIS_URL is set (a fresh key prefix, preloaded with 10 days of history and
 * deleted at the end), else from the in-memory store (preloaded the same way through POST /v1/events).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, devNull } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { REDACT } from '../src/adapters/logging/logger.js';
import { loadConfig } from '../src/config.js';
import { createService } from '../src/wiring/service.js';
import { generateTransactions } from '../test/helpers/generate.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '1000' },
    connections: { type: 'string', default: '32' },
    'swap-every': { type: 'string', default: '30' },
    'log-file': { type: 'string', default: devNull },
    // Internal: the load-generator child.
    loadgen: { type: 'string' },
    seconds: { type: 'string', default: '60' },
  },
});

const CUSTOMERS = 2000;
const TERMINALS = 1000;
const HISTORY_END = Date.parse('2018-04-11T00:00:00Z');
const DAY_S = 86_400;

interface LoadResult {
  requests: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  latency: { p50: number; p99: number; p99_9: number; max: number };
  duration_s: number;
}

if (values.loadgen) await loadgen(values.loadgen);
else await soak();

/** Child mode: one autocannon run at the fixed rate; prints its summary as JSON. */
async function loadgen(url: string): Promise<void> {
  type Autocannon = (opts: object) => Promise<{
    requests: { total: number };
    errors: number;
    timeouts: number;
    non2xx: number;
    latency: { p50: number; p99: number; p99_9: number; max: number };
    duration: number;
  }>;
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const tag = randomBytes(4).toString('hex');
  let n = 0;
  const r = await autocannon({
    url,
    connections: Number(values.connections),
    overallRate: Number(values.rate),
    duration: Number(values.seconds),
    requests: [
      {
        method: 'POST',
        path: '/v1/score',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req: object) => {
          const i = n++;
          return {
            ...req,
            body: JSON.stringify({
              transaction_id: `soak-${tag}-${i}`,
              timestamp: new Date(HISTORY_END - DAY_S * 1000 + (i % 86_400) * 1000).toISOString(),
              customer_id: `C${(i * 7919) % CUSTOMERS}`,
              terminal_id: `T${(i * 104_729) % TERMINALS}`,
              amount: 5 + ((i * 31) % 20_000) / 100,
            }),
          };
        },
      },
    ],
  });
  const out: LoadResult = {
    requests: r.requests.total,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    latency: { p50: r.latency.p50, p99: r.latency.p99, p99_9: r.latency.p99_9, max: r.latency.max },
    duration_s: r.duration,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function runLoad(url: string, seconds: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        '--loadgen',
        url,
        '--seconds',
        String(seconds),
        '--rate',
        String(values.rate),
        '--connections',
        String(values.connections),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`load generator exited with ${code}`);
        resolve(JSON.parse(out.trim().split('\n').at(-1)!) as LoadResult);
      } catch (err) {
        reject(err);
      }
    });
  });
}

async function soak(): Promise<void> {
  const minutes = Number(values.minutes);
  const swapEvery = Number(values['swap-every']) * 1000;
  const token = randomBytes(16).toString('hex');
  const prefix = `soak-${Date.now().toString(36)}`;
  const modelDir =
    process.env.MODEL_DIR ??
    (existsSync('models/fraudscore') && readdirSync('models/fraudscore').length >= 2
      ? 'models'
      : 'test/fixtures/models');
  const config = loadConfig({
    ...process.env,
    HOST: '127.0.0.1',
    PORT: '0',
    MODEL_DIR: modelDir,
    MODEL_VERSION: '1',
    ADMIN_TOKEN: token,
    EVENTS_TOKEN: `${token}-events`,
    LOG_LEVEL: 'info',
    REDIS_KEY_PREFIX: prefix,
    KAFKA_BROKERS: '',
    WORKER_IN_PROCESS: 'false',
  });
  const logger = pino(
    {
      level: 'info',
      base: { service: 'fraudscore' },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ dest: values['log-file'], sync: false, minLength: 4096 }),
  );
  const service = await createService(config, { logger });
  await service.app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(service.app.server.address() as { port: number }).port}`;
  const note = (m: string) => process.stderr.write(`[soak] ${m}\n`);
  note(`serving on ${base}; store ${config.REDIS_URL ? 'redis' : 'memory'}; models from ${modelDir}`);

  // History, so that features read real windows: 10 days over the customers and terminals the load uses.
  const history = generateTransactions({
    seed: 7,
    days: 10,
    customers: CUSTOMERS,
    terminals: TERMINALS,
    perDay: 3000,
  });
  for (let i = 0; i < history.length; i += 1000) {
    const events = history.slice(i, i + 1000).map((t) => ({
      type: 'transaction',
      transaction_id: t.id,
      timestamp: new Date(t.t).toISOString(),
      customer_id: t.customer_id,
      terminal_id: t.terminal_id,
      amount: t.amount,
    }));
    const r = await fetch(`${base}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}-events` },
      body: JSON.stringify({ events }),
    });
    if (!r.ok) throw new Error(`preload failed: ${r.status} ${await r.text()}`);
  }
  note(`preloaded ${history.length} transactions; warming up for 10 s`);
  await runLoad(base, 10);
  const rssStart = process.memoryUsage().rss;

  const swaps: { at_s: number; version: string; status: number; ms: number }[] = [];
  const started = Date.now();
  let next = '2';
  const swap = async () => {
    const t = performance.now();
    const r = await fetch(`${base}/admin/models/fraudscore/activate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ version: next }),
    }).catch(() => undefined);
    swaps.push({
      at_s: Math.round((Date.now() - started) / 1000),
      version: next,
      status: r?.status ?? 0,
      ms: Math.round(performance.now() - t),
    });
    next = next === '2' ? '1' : '2';
  };
  const timer = setInterval(() => void swap(), swapEvery);

  const perMinute: (LoadResult & { minute: number; rss_mb: number; heap_mb: number })[] = [];
  for (let m = 1; m <= minutes; m++) {
    const r = await runLoad(base, 60);
    const mem = process.memoryUsage();
    perMinute.push({ minute: m, ...r, rss_mb: mb(mem.rss), heap_mb: mb(mem.heapUsed) });
    note(
      `minute ${m}/${minutes}: ${r.requests} requests, ${r.errors + r.non2xx} errors, p99 ${r.latency.p99} ms, ` +
        `rss ${mb(mem.rss)} MB`,
    );
  }
  clearInterval(timer);
  const rssEnd = process.memoryUsage().rss;
  const metrics = await (await fetch(`${base}/metrics`)).text();
  const degraded = metrics
    .split('\n')
    .filter((l) => l.startsWith('fraudscore_degraded_total'))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
  const models = (await (
    await fetch(`${base}/admin/models`, { headers: { authorization: `Bearer ${token}` } })
  ).json()) as { models: { active?: string }[] };
  await service.close();
  logger.flush();
  if (config.REDIS_URL) {
    const redis = new Redis(config.REDIS_URL);
    let cursor = '0';
    do {
      const [c, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = c;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
    await redis.quit();
  }

  const total = perMinute.reduce((n, m) => n + m.requests, 0);
  const result = {
    date: new Date().toISOString(),
    command: `npx tsx bench/soak.ts --minutes ${minutes} --rate ${values.rate} --connections ${values.connections} --swap-every ${values['swap-every']}`,
    node: process.version,
    cpus: cpus().length,
    store: config.REDIS_URL ? 'redis' : 'memory',
    model_dir: modelDir,
    target_rate: Number(values.rate),
    minutes,
    requests: total,
    achieved_rate: Math.round(total / (minutes * 60)),
    errors: perMinute.reduce((n, m) => n + m.errors + m.non2xx, 0),
    timeouts: perMinute.reduce((n, m) => n + m.timeouts, 0),
    degraded_answers: degraded,
    p99_ms_per_minute: perMinute.map((m) => m.latency.p99),
    max_ms_per_minute: perMinute.map((m) => m.latency.max),
    rss_mb: { start: mb(rssStart), end: mb(rssEnd), per_minute: perMinute.map((m) => m.rss_mb) },
    swaps: {
      count: swaps.length,
      failed: swaps.filter((s) => s.status !== 200).length,
      max_ms: Math.max(0, ...swaps.map((s) => s.ms)),
      final_active: models.models[0]?.active,
    },
    per_minute: perMinute,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

function mb(bytes: number): number {
  return Math.round(bytes / 1024 / 1024);
}
