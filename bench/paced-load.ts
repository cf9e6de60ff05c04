/**
 * An open-loop load at a constant rate: request k is sent at start + k / rate whether or not earlier ones were
 * answered (up to `--connections` in flight; beyond that a request waits for a socket and its latency counts
 * from when it was due). autocannon's `-R` cannot do this: each connection sends its whole quota for the second
 * back to back when the second begins, so the server sees bursts of `connections` requests at once and its
 * latency at "half capacity" is mostly the queue of that burst. Timers fire at ~1 ms granularity, so arrivals
 * are spaced to within a millisecond. Prints one JSON line in bench/lib/service.ts' `Load` shape.
 *
 *   npx tsx bench/paced-load.ts --port 18091 --rate 800 --duration 10 --body '{"transaction_id":"[<id>]",…}'
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    path: { type: 'string', default: '/v1/score' },
    rate: { type: 'string' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '64' },
    body: { type: 'string' },
  },
});
const RATE = Number(values.rate);
const DURATION_MS = Number(values.duration) * 1000;
const TEMPLATE = values.body ?? '{}';
const runId = Date.now().toString(36);
const agent = new Agent({ keepAlive: true, maxSockets: Number(values.connections) });

const latencies: number[] = [];
let non2xx = 0;
let errors = 0;
let inFlight = 0;

function send(k: number, due: number): void {
  inFlight++;
  const body = TEMPLATE.replace('[<id>]', `paced-${runId}-${k}`);
  const done = (ok: boolean) => {
    inFlight--;
    latencies.push(performance.now() - due);
    if (!ok) errors++;
  };
  const req = request(
    {
      agent,
      host: '127.0.0.1',
      port: Number(values.port),
      path: values.path,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    },
    (res) => {
      if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) non2xx++;
      res.resume();
      res.on('end', () => done(true));
    },
  );
  req.on('error', () => done(false));
  req.end(body);
}

const start = performance.now();
let sent = 0;
await new Promise<void>((resolve) => {
  const tick = () => {
    const now = performance.now();
    const elapsed = now - start;
    const due = Math.min(Math.floor((elapsed * RATE) / 1000), Math.floor((DURATION_MS * RATE) / 1000));
    for (; sent < due; sent++) send(sent, start + (sent * 1000) / RATE);
    if (elapsed >= DURATION_MS) return resolve();
    setTimeout(tick, Math.max(0, start + ((sent + 1) * 1000) / RATE - performance.now()));
  };
  tick();
});
while (inFlight > 0) await new Promise((r) => setTimeout(r, 5));
agent.destroy();

const sorted = latencies.sort((a, b) => a - b);
const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
console.log(
  JSON.stringify({
    rps: (sorted.length * 1000) / DURATION_MS,
    requests: sorted.length,
    p50: q(0.5),
    p99: q(0.99),
    non2xx,
    errors,
  }),
);
