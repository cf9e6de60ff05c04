import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import type { LoadedVersion } from '../../../src/usecases/models/loaded-version.js';
import { createService, type Service } from '../../../src/wiring/service.js';
import { rng } from '../../helpers/generate.js';
import { sleep } from '../../helpers/wait.js';

const TOKEN = 'load-admin-token-0123456789';
const MODEL = 'fraudscore';
const CONCURRENCY = 16;
const MIN_OPERATIONS = 50;
const CANARY_REQUESTS = 6_000;
const CANARY_PERCENT = 20;
const WARM_SWAPS = 80;

/** Vitest runs without --expose-gc; V8 still hands out `gc` once the flag is set at run time. */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (() => void) | undefined;
  return () => {
    gc?.();
    gc?.();
  };
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? Number.NaN;

interface Served {
  /** The interval (see `Roles`) when the request was sent and when its answer arrived. */
  readonly from: number;
  readonly to: number;
  readonly status: number;
  readonly customer: string;
  readonly version?: string;
  readonly shadow: string;
  readonly degraded?: boolean;
  readonly reasons?: readonly string[];
  readonly ms?: number;
}

/**
 * What may answer in one interval. Even intervals are stable states; odd ones are operations in flight, when
 * either the state before or the state after may answer.
 */
interface Roles {
  readonly primary: ReadonlySet<string>;
  /** 'none' when no shadow is set. */
  readonly shadow: ReadonlySet<string>;
}

interface ModelSummary {
  readonly active?: string;
  readonly canary?: { readonly version: string; readonly percent: number };
  readonly shadow?: { readonly version: string };
}

interface Op {
  readonly label: string;
  readonly method: string;
  readonly path: string;
  readonly body?: object;
}

const PATH = `/admin/models/${MODEL}`;
const activate = (v: string): Op => ({
  label: `activate ${v}`,
  method: 'POST',
  path: `${PATH}/activate`,
  body: { version: v },
});
const canary = (v: string, percent: number): Op => ({
  label: `canary ${v} ${percent}%`,
  method: 'PUT',
  path: `${PATH}/canary`,
  body: { version: v, percent },
});
const shadow = (v: string): Op => ({
  label: `shadow ${v}`,
  method: 'PUT',
  path: `${PATH}/shadow`,
  body: { version: v },
});
const clear = (role: 'canary' | 'shadow'): Op => ({
  label: `${role} clear`,
  method: 'DELETE',
  path: `${PATH}/${role}`,
});
const rollback: Op = { label: 'rollback', method: 'POST', path: `${PATH}/rollback` };

/**
 * One cycle from `a` active with no other role to `b` active with no other role, so cycles alternate. Each
 * operation is valid in the state it runs in; the two rollbacks retire a version, and the next use reloads it.
 */
const cycle = (a: string, b: string): Op[] => [
  activate(b),
  canary(a, 30),
  canary(a, 60),
  clear('canary'),
  shadow(a),
  clear('shadow'),
  rollback,
  canary(b, 20),
  canary(b, 50),
  activate(b),
  activate(a),
  shadow(b),
  clear('shadow'),
  rollback,
];

const rolesOf = (m: ModelSummary): Roles => ({
  primary: new Set([m.active!, ...(m.canary ? [m.canary.version] : [])]),
  shadow: new Set([m.shadow?.version ?? 'none']),
});

describe('model lifecycle under load (issue 6)', () => {
  let s: Service;
  let base: string;
  const modelLog: Record<string, unknown>[] = [];
  const gc = collector();
  const loaded = new Set<LoadedVersion>();
  const track = () => {
    for (const v of ['1', '2']) {
      const lv = s.registry.get(MODEL, v);
      if (lv) loaded.add(lv);
    }
  };

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'under-load-'));
    await cp('test/fixtures/models', dir, { recursive: true });
    // Only the model audit lines are kept; the decision audit lines are still serialised, as in production.
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n'))
          if (line.includes('"audit":"model"')) modelLog.push(JSON.parse(line));
        done();
      },
    });
    // The load generator shares the event loop and the CPU with the server, so the 50 ms production budget
    // measures the test host (timeouts show up during the warm-up too); a generous one keeps "degraded" meaning
    // "broken by a lifecycle operation".
    const config = loadConfig({
      MODEL_DIR: dir,
      MODEL_VERSION: '1',
      ADMIN_TOKEN: TOKEN,
      LOG_LEVEL: 'info',
      REQUEST_DEADLINE_MS: '1000',
    });
    s = await createService(config, { logger: pino({ level: 'info' }, sink) });
    base = await s.app.listen({ port: 0, host: '127.0.0.1' });
    track();
  });
  afterAll(() => s?.close());

  let phase = 0;
  const served: Served[] = [];
  let sequence = 0;
  const random = rng(42);
  const start = Date.parse('2018-06-01T00:00:00Z');

  /** `count` requests (or until `until()`), CONCURRENCY at a time, over real HTTP, each a new transaction. */
  async function load(o: { count: number; customer: (i: number) => string; until?: () => boolean }) {
    let next = 0;
    const worker = async () => {
      while (next < o.count && !o.until?.()) {
        const customer = o.customer(next++);
        const body = {
          transaction_id: `L${sequence++}`,
          timestamp: new Date(start + Math.floor(random() * 30 * 86_400) * 1000).toISOString(),
          customer_id: customer,
          terminal_id: `T${Math.floor(random() * 500)}`,
          amount: Math.round(random() ** 3 * 200_000) / 100,
        };
        const from = phase;
        const r = await fetch(`${base}/v1/score`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        const json = (await r.json()) as {
          model?: { version: string };
          shadow?: { version: string };
          degraded?: boolean;
          degraded_reasons?: string[];
          timings_ms?: { total: number };
        };
        served.push({
          from,
          to: phase,
          status: r.status,
          customer,
          version: json.model?.version,
          shadow: json.shadow?.version ?? 'none',
          degraded: json.degraded,
          reasons: json.degraded_reasons,
          ms: json.timings_ms?.total,
        });
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  }

  async function admin(op: Op): Promise<ModelSummary> {
    const r = await fetch(`${base}${op.path}`, {
      method: op.method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(op.body ? { 'content-type': 'application/json' } : {}),
      },
      ...(op.body ? { body: JSON.stringify(op.body) } : {}),
    });
    const json = (await r.json()) as ModelSummary;
    expect(r.status, `${op.label}: ${JSON.stringify(json)}`).toBe(200);
    return json;
  }

  /** Memory once garbage is collected and retired versions drained: the lowest of a few samples, as RSS only lags. */
  async function settledMemory() {
    await sleep(200);
    let best = process.memoryUsage();
    for (let i = 0; i < 4; i++) {
      gc();
      await sleep(250);
      const m = process.memoryUsage();
      if (m.rss < best.rss) best = m;
    }
    return best;
  }

  it('answers every request from a version serving at the time, through 50+ operations, then a steady canary', async () => {
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const lag: Record<string, string> = {};
    const lagOf = (name: string) => {
      lag[name] = `p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(loop.max / 1e6).toFixed(1)} ms`;
      loop.reset();
    };

    const roles: Roles[] = [rolesOf({ active: '1' })];
    const operations: string[] = [];
    let cycles = 0;
    /** Whole cycles of operations until `count` more have run, each applied while requests are in flight. */
    const operate = async (count: number) => {
      const target = operations.length + count;
      while (operations.length < target) {
        for (const op of cycles++ % 2 === 0 ? cycle('1', '2') : cycle('2', '1')) {
          const was = roles[phase]!;
          phase++;
          const now = rolesOf(await admin(op));
          roles[phase] = {
            primary: new Set([...was.primary, ...now.primary]),
            shadow: new Set([...was.shadow, ...now.shadow]),
          };
          roles[++phase] = now;
          operations.push(op.label);
          track();
          await sleep(5 + random() * 15);
        }
      }
    };
    const underLoad = async (ops: number, customer: (i: number) => string, atLeast = 0) => {
      let done = false;
      await Promise.all([
        operate(ops).finally(() => {
          done = true;
        }),
        load({ count: atLeast, customer }),
        load({ count: Number.POSITIVE_INFINITY, customer, until: () => done }),
      ]);
    };

    // Warm-up: JIT, sockets, the admin routes (one cycle of every operation), the first entries of the answer
    // cache, and enough loads and releases for the native allocator to reach its high-water mark: RSS rises by
    // ~25 MiB over the first ~80 session loads of a process and then stays flat (measured through 200), which is
    // no leak. The check below is then about growth per swap.
    await underLoad(1, (i) => `W${i % 1_000}`, 3_000);
    const idle = s.registry.active(MODEL)!.version === '1' ? '2' : '1';
    for (let i = 0; i < WARM_SWAPS; i++) {
      await s.registry.activate(MODEL, idle);
      track();
      await s.registry.rollback(MODEL);
    }
    const warm = served.length;
    const warmOps = operations.length;
    lagOf('warm-up');
    const before = await settledMemory();

    const opsStarted = performance.now();
    await underLoad(MIN_OPERATIONS, (i) => `C${i % 5_000}`);
    const opsSeconds = (performance.now() - opsStarted) / 1000;
    const duringOps = served.slice(warm);
    const measuredOps = operations.length - warmOps;
    lagOf('operations');
    const afterSwaps = await settledMemory();

    // A steady canary of the version that is not active; the cycles leave nothing else set.
    const active = s.registry.active(MODEL)!.version;
    const other = active === '1' ? '2' : '1';
    phase++;
    roles[phase] = rolesOf(await admin(canary(other, CANARY_PERCENT)));
    track();
    const steady = phase;
    await load({ count: CANARY_REQUESTS, customer: (i) => `K${i % 3_000}` });
    const steadyServed = served.slice(warm + duringOps.length);
    lagOf('steady canary');
    loop.disable();
    const afterCanary = await settledMemory();

    const failures = served.filter((r) => r.status !== 200 || r.degraded !== false);
    const misrouted = served.filter((r) => {
      const valid = roles.slice(r.from, r.to + 1);
      return !valid.some((v) => v.primary.has(r.version!)) || !valid.some((v) => v.shadow.has(r.shadow));
    });
    const share = (100 * steadyServed.filter((r) => r.version === other).length) / steadyServed.length;
    const versionsOf = new Map<string, Set<string>>();
    for (const r of steadyServed)
      versionsOf.set(r.customer, (versionsOf.get(r.customer) ?? new Set()).add(r.version!));
    const released = modelLog.filter((l) => l.type === 'released');
    const retired = [...loaded].filter((lv) => s.registry.get(MODEL, lv.version) !== lv);
    const growth = (afterSwaps.rss - before.rss) / before.rss;
    const ms = (rs: readonly Served[]) => {
      const xs = rs.map((r) => r.ms!);
      return `p50 ${percentile(xs, 0.5).toFixed(1)} ms, p99 ${percentile(xs, 0.99).toFixed(1)} ms`;
    };

    console.log(
      [
        `requests: ${served.length} (${warm} warm-up with ${warmOps} operations, then ${WARM_SWAPS} idle ` +
          `activate/rollback pairs; ${duringOps.length} during ` +
          `${measuredOps} operations ` +
          `in ${opsSeconds.toFixed(1)} s; ${steadyServed.length} with a steady canary), concurrency ${CONCURRENCY}`,
        `failed or degraded: ${failures.length}; answered by a version not serving at the time: ${misrouted.length}`,
        `server time: warm-up ${ms(served.slice(0, warm))}; operations ${ms(duringOps)}; canary ${ms(steadyServed)}`,
        `event-loop delay: ${Object.entries(lag)
          .map(([k, v]) => `${k} ${v}`)
          .join('; ')}`,
        `canary share: ${share.toFixed(2)} % of ${steadyServed.length} requests from ${versionsOf.size} customers ` +
          `(target ${CANARY_PERCENT} %)`,
        `model versions loaded: ${loaded.size}; retired: ${retired.length}; released after drain: ${released.length} ` +
          `(forced: ${released.filter((l) => l.forced).length})`,
        `RSS before the swaps ${mib(before.rss)} MiB, after them ${mib(afterSwaps.rss)} MiB ` +
          `(${(growth * 100).toFixed(1)} %), after the canary traffic ${mib(afterCanary.rss)} MiB; heap used ` +
          `${mib(before.heapUsed)} → ${mib(afterSwaps.heapUsed)} → ${mib(afterCanary.heapUsed)} MiB ` +
          '(the answer cache keeps every new transaction)',
      ].join('\n'),
    );

    expect(measuredOps).toBeGreaterThanOrEqual(MIN_OPERATIONS);
    expect(duringOps.length).toBeGreaterThan(measuredOps * 10);
    expect(failures.slice(0, 5)).toEqual([]);
    expect(misrouted.slice(0, 5)).toEqual([]);

    expect(steadyServed.length).toBeGreaterThanOrEqual(5_000);
    expect(steadyServed.every((r) => r.from === steady && r.to === steady)).toBe(true);
    expect(Math.abs(share - CANARY_PERCENT)).toBeLessThanOrEqual(3);
    expect([...versionsOf].filter(([, v]) => v.size > 1)).toEqual([]);
    expect((await s.registry.list()).find((m) => m.name === MODEL)).toMatchObject({
      active,
      canary: { version: other, percent: CANARY_PERCENT },
    });

    // Every version that lost its last role drained and released its sessions, none by the drain timeout.
    expect(retired.length).toBeGreaterThanOrEqual(Math.floor(operations.length / 7));
    expect(retired.map((lv) => [lv.id, lv.state, lv.inFlight])).toEqual(
      retired.map((lv) => [lv.id, 'released', 0]),
    );
    expect(released).toHaveLength(retired.length);
    expect(released.filter((l) => l.forced)).toEqual([]);

    expect(Math.abs(growth)).toBeLessThanOrEqual(0.1);
  }, 60_000);
});
