/**
 * Issue 16, one fleet, one truth: `fraudscore serve` processes on one private redis-server (its own port, so it
 * can be killed) and one model directory, every admin call sent to one of them. Role changes converge on every
 * replica; a canary routes each customer the same way on every replica, including one started during the
 * canary; a replica that cannot load a version keeps serving and shows as not converged; two concurrent changes
 * end with one 2xx and one 409; a transaction retried on another replica gets the identical answer, a changed
 * one gets 409 anywhere and is audited once; a Redis outage changes nothing that serves.
 */
import type { ChildProcess } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTopic } from '../helpers/kafka.js';
import { copyModelVersion } from '../helpers/models.js';
import { freePort } from '../helpers/net.js';
import { spawnCli, stopChild } from '../helpers/process.js';
import { startPrivateRedis } from '../helpers/redis.js';
import { REPO_ROOT, requireKafka, uniqueName } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'fleet-test-admin-token-0123456789';
const MODEL = 'fraudscore';
/** The bound the issue gives for every replica to apply a change. */
const CONVERGE_MS = 10_000;
const CUSTOMERS = Array.from({ length: 300 }, (_, i) => `fleet-C${i}`);

interface Replica {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
  readonly out: string[];
}

interface Roles {
  readonly active?: string;
  readonly canary?: { version: string; percent: number };
  readonly shadow?: { version: string };
}

interface ModelView extends Roles {
  readonly previous?: string;
  readonly fleet: {
    readonly desired?: Roles & { generation: number };
    readonly replicas: { replica: string; generation: number; error?: string; active?: string }[];
    readonly converged: boolean;
  };
}

describe('one fleet, one truth: three replicas on one Redis', () => {
  let dir: string;
  let models: string;
  let redisPort: number;
  let redis: ChildProcess;
  let brokers: string[];
  const decisions = uniqueName('fleet-decisions');
  const prefix = uniqueName('fleet');
  const replicas: Replica[] = [];
  let [a, b, c]: Replica[] = [];

  const start = async (name: string, modelDir = models): Promise<Replica> => {
    const r = await startReplica(name, {
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      REDIS_KEY_PREFIX: prefix,
      MODEL_DIR: modelDir,
      KAFKA_BROKERS: brokers.join(','),
      KAFKA_TOPIC_DECISIONS: decisions,
    });
    replicas.push(r);
    return r;
  };

  beforeAll(async () => {
    ({ brokers } = await requireKafka());
    dir = await mkdtemp(join(tmpdir(), 'fleet-'));
    models = join(dir, 'models');
    await cp(join(REPO_ROOT, 'test/fixtures/models'), models, { recursive: true });
    redisPort = await freePort();
    redis = await startPrivateRedis(redisPort, dir);
    [a, b, c] = await Promise.all(['replica-a', 'replica-b', 'replica-c'].map((n) => start(n)));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => stopChild(r.child, 10_000)));
    if (redis) await stopChild(redis, 5_000);
    await rm(dir, { recursive: true, force: true });
  });

  const running = () => replicas.filter((r) => r.child.exitCode === null);

  /** Waits until every running replica (but `except`) serves `roles`, then returns how long that took. */
  async function converged(roles: Roles, except: readonly Replica[] = []): Promise<number> {
    const started = Date.now();
    const members = running().filter((r) => !except.includes(r));
    await waitFor(
      async () => (await Promise.all(members.map((r) => view(r)))).every((v) => sameRoles(v, roles)),
      CONVERGE_MS,
      `every replica to serve ${JSON.stringify(roles)}`,
      () => members.map((r) => `${r.name}: ${r.out.join('').slice(-800)}`).join('\n'),
    );
    return Date.now() - started;
  }

  const times: Record<string, number> = {};

  it('starts every replica on the initial version, written once as generation 1', async () => {
    for (const r of [a!, b!, c!]) {
      const v = await view(r);
      expect(v.active).toBe('1');
      expect(v.fleet.desired).toMatchObject({ generation: 1, active: '1' });
    }
    await waitFor(
      async () => (await view(a!)).fleet.replicas.length === 3 && (await view(a!)).fleet.converged,
      CONVERGE_MS,
      'three heartbeats',
    );
  });

  it('activate, sent to one replica, converges on all three', async () => {
    const r = await admin(a!, 'POST', '/activate', { version: '2' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    times.activate = await converged({ active: '2' });
    const v = await view(c!);
    expect(v.previous).toBe('1');
    expect(v.fleet.desired).toMatchObject({ generation: 2, active: '2', previous: '1' });
  });

  let routing: Map<string, string>;

  it('a 30% canary routes every customer the same way on every replica', async () => {
    const r = await admin(b!, 'PUT', '/canary', { version: '1', percent: 30 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    times.canary = await converged({ active: '2', canary: { version: '1', percent: 30 } });
    const byReplica = await Promise.all([a!, b!, c!].map((x) => routes(x)));
    routing = byReplica[0]!;
    for (const other of byReplica.slice(1)) expect(other).toEqual(routing);
    const share = [...routing.values()].filter((v) => v === '1').length / CUSTOMERS.length;
    expect(share).toBeGreaterThanOrEqual(0.2);
    expect(share).toBeLessThanOrEqual(0.4);
    times.canaryShare = share;
  });

  it('a replica started during the canary routes identically from its first scored request', async () => {
    const d = await start('replica-d');
    expect(await routes(d)).toEqual(routing);
    expect((await view(d)).canary).toEqual({ version: '1', percent: 30 });
  }, 60_000);

  it('clearing the canary, setting and clearing a shadow, and rolling back converge everywhere', async () => {
    expect((await admin(c!, 'DELETE', '/canary')).status).toBe(200);
    times.clearCanary = await converged({ active: '2' });
    expect((await admin(a!, 'PUT', '/shadow', { version: '1' })).status).toBe(200);
    times.shadow = await converged({ active: '2', shadow: { version: '1' } });
    expect((await admin(b!, 'DELETE', '/shadow')).status).toBe(200);
    times.clearShadow = await converged({ active: '2' });
    expect((await admin(a!, 'POST', '/rollback')).status).toBe(200);
    times.rollback = await converged({ active: '1' });
  });

  it('of two concurrent changes, one is made and the other is refused with 409', async () => {
    // Version 3 is loaded nowhere yet: both replicas read the same generation, then spend the load on it.
    await copyModelVersion(models, '2', '3');
    const [x, y] = await Promise.all([
      admin(a!, 'PUT', '/shadow', { version: '3' }),
      admin(b!, 'PUT', '/canary', { version: '3', percent: 10 }),
    ]);
    expect([x.status, y.status].sort()).toEqual([200, 409]);
    const refused = x.status === 409 ? x : y;
    expect(refused.body.error.code).toBe('conflict');
    const won: Roles =
      x.status === 200
        ? { active: '1', shadow: { version: '3' } }
        : { active: '1', canary: { version: '3', percent: 10 } };
    await converged(won);
    expect((await admin(c!, 'DELETE', x.status === 200 ? '/shadow' : '/canary')).status).toBe(200);
    await converged({ active: '1' });
  });

  it('a replica that cannot load the new version keeps serving the old one and shows as not converged', async () => {
    const broken = join(dir, 'broken-models');
    await cp(models, broken, { recursive: true });
    await writeFile(join(broken, MODEL, '3', 'lr.onnx'), 'not an onnx file');
    const e = await start('replica-e', broken);
    expect((await admin(a!, 'POST', '/activate', { version: '3' })).status).toBe(200);
    times.activateWithBroken = await converged({ active: '3' }, [e]);
    await waitFor(
      async () => {
        const status = (await view(a!)).fleet;
        const mine = status.replicas.find((r) => r.replica === 'replica-e');
        return !status.converged && mine?.error !== undefined && mine.generation < status.desired!.generation;
      },
      CONVERGE_MS,
      'replica-e reported as not converged',
    );
    const mine = (await view(e)) as ModelView;
    expect(mine.active).toBe('1');
    const scored = await score(e, 'fleet-broken-1', 'fleet-C1');
    expect(scored.status).toBe(200);
    expect(scored.body.model.version).toBe('1');
    await stopChild(e.child, 10_000);
    // Its heartbeat expires: the fleet is converged again without it.
    await waitFor(async () => (await view(a!)).fleet.converged, CONVERGE_MS, 'convergence without replica-e');
  }, 60_000);

  it('a transaction retried on another replica gets the identical answer, a changed one 409, one audit record', async () => {
    const id = uniqueName('fleet-tx');
    const first = await score(a!, id, 'fleet-C7');
    expect(first.status).toBe(200);
    expect(first.body.degraded).toBe(false);
    const again = await score(b!, id, 'fleet-C7');
    expect(again.status).toBe(200);
    const { timings_ms: _1, ...x } = first.body;
    const { timings_ms: _2, ...y } = again.body;
    expect(y).toEqual(x);
    const explained = await score(c!, id, 'fleet-C7', 42.5, '?explain=true');
    expect(explained.status).toBe(200);
    expect(Object.keys(explained.body.features ?? {}).length).toBeGreaterThan(0);
    const changed = await score(c!, id, 'fleet-C7', 99);
    expect(changed.status).toBe(409);
    expect(changed.body.error.code).toBe('conflict');

    // Two replicas racing on one new id: one answer for both.
    const race = uniqueName('fleet-race');
    const [r1, r2] = await Promise.all([score(a!, race, 'fleet-C8'), score(b!, race, 'fleet-C8')]);
    expect(r1.body.score).toBe(r2.body.score);
    expect(r1.body.model).toEqual(r2.body.model);

    const kafka = new Kafka({ clientId: 'fleet-test', brokers, logLevel: logLevel.NOTHING });
    const records = await readTopic(kafka, decisions, 1, 3_000);
    expect(records.filter((m) => m.key === id)).toHaveLength(1);
    expect(records.filter((m) => m.key === race)).toHaveLength(1);
  }, 60_000);

  it('killing Redis while a canary is set leaves every replica serving its last state; they stay converged after', async () => {
    expect((await admin(a!, 'PUT', '/canary', { version: '2', percent: 30 })).status).toBe(200);
    const canary = { active: '3', canary: { version: '2', percent: 30 } };
    await converged(canary);
    const before = await routes(a!);
    redis.kill('SIGKILL');
    await new Promise<void>((r) => redis.once('exit', () => r()));
    // While Redis is away: answers (degraded features, never 5xx), routed as before, the canary untouched.
    for (const r of running()) {
      const during = await routes(r, 60, 'down');
      for (const [customer, version] of during)
        expect(version, `${r.name} ${customer}`).toBe(before.get(customer));
      expect((await view(r)).canary).toEqual(canary.canary);
    }
    const change = await admin(a!, 'DELETE', '/canary');
    expect(change.status).toBe(503);
    expect(change.body.error.code).toBe('control_plane_unavailable');
    // Redis returns empty (no persistence): the replicas seed it again from what they serve.
    redis = await startPrivateRedis(redisPort, dir);
    await waitFor(
      async () => {
        const v = await view(a!);
        return v.fleet.desired?.canary?.version === '2' && v.fleet.converged;
      },
      3 * CONVERGE_MS,
      'the serving state seeded again and converged',
    );
    await converged(canary);
    for (const r of running())
      expect(await routes(r, 60, 'after')).toEqual(new Map([...before].slice(0, 60)));
    console.info(
      `fleet: converged in ${JSON.stringify(times)} ms (canary share ${times.canaryShare}); ` +
        `${running().length} replicas`,
    );
  }, 90_000);
});

// ------------------------------------------------------------------------------------------------ helpers

async function startReplica(name: string, env: Record<string, string>): Promise<Replica> {
  const port = await freePort();
  const { child, out } = spawnCli('serve', {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    ADMIN_TOKEN: TOKEN,
    MODEL_VERSION: '1',
    REPLICA_ID: name,
    CONTROL_POLL_MS: '1000',
    CONTROL_HEARTBEAT_MS: '500',
    // Generous: the test is about routing and answers, not latency, and must hold on a busy machine.
    REQUEST_DEADLINE_MS: '2000',
    LOG_LEVEL: 'warn',
    REDIS_CLUSTER_NODES: '',
    WORKER_IN_PROCESS: 'false',
    ...env,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => (await fetch(`${url}/health/ready`)).status === 200,
    60_000,
    `${name} ready`,
    () => out.join('').slice(-2000),
  );
  return { name, url, child, out };
}

async function admin(r: Replica, method: string, path: string, body?: object) {
  const res = await fetch(`${r.url}/admin/models/${MODEL}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return {
    status: res.status,
    body: (await res.json()) as { error: { code: string } } & Record<string, unknown>,
  };
}

async function view(r: Replica): Promise<ModelView> {
  const res = await fetch(`${r.url}/admin/models`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const body = (await res.json()) as { models: (ModelView & { name: string })[] };
  return body.models.find((m) => m.name === MODEL)!;
}

async function score(r: Replica, id: string, customer: string, amount = 42.5, query = '') {
  const res = await fetch(`${r.url}/v1/score${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      transaction_id: id,
      timestamp: '2018-08-09T10:00:00Z',
      customer_id: customer,
      terminal_id: 'fleet-T1',
      amount,
    }),
  });
  return {
    status: res.status,
    body: (await res.json()) as {
      score: number;
      degraded: boolean;
      model: { version: string };
      timings_ms: Record<string, number>;
      features?: Record<string, number>;
      error: { code: string };
    },
  };
}

/** The version each customer (the first `n`) is routed to by `r`, scoring one new transaction per customer. */
async function routes(r: Replica, n = CUSTOMERS.length, tag = ''): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < n; i += 20) {
    const batch = CUSTOMERS.slice(i, Math.min(n, i + 20));
    const answers = await Promise.all(
      batch.map((customer) => score(r, uniqueName(`${r.name}-${tag}-${customer}`), customer)),
    );
    answers.forEach((res, k) => {
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      out.set(batch[k]!, res.body.model.version);
    });
  }
  return out;
}

function sameRoles(v: ModelView, want: Roles): boolean {
  return (
    v.active === want.active &&
    v.canary?.version === want.canary?.version &&
    v.canary?.percent === want.canary?.percent &&
    v.shadow?.version === want.shadow?.version
  );
}
