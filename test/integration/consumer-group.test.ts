/**
 * Issue 8 (scale-out) and issue 9 (worker crash): two `fraudscore worker` processes in one consumer group share
 * 6-partition topics keyed by customer. While ~20k transactions (10 days, with labels) are replayed, one worker
 * is killed with SIGKILL; the survivor takes over its partitions once the group evicts it, and the final state in
 * Redis gives, for every transaction of the last day, exactly the features of the in-memory backfill. Every
 * transaction is stored once per entity: redeliveries after the kill are idempotent and change nothing.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { type Admin, AssignerProtocol, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../src/adapters/fs/feature-set-files.js';
import { arrayRows } from '../../src/adapters/fs/handbook-csv.js';
import { RedisFeatureStore } from '../../src/adapters/redis/redis-store.js';
import { DAY_MS } from '../../src/domain/features/time.js';
import type { HandbookRow } from '../../src/domain/history.js';
import { replay } from '../../src/usecases/replay.js';
import { backfillToCsv } from '../../src/wiring/jobs.js';
import { parseFeatures, retentionFor } from '../helpers/features.js';
import { generateTransactions, handbookRows } from '../helpers/generate.js';
import { createTopics, topicSink, uniqueTopics } from '../helpers/kafka.js';
import { spawnCli, stopChild } from '../helpers/process.js';
import { deleteByPrefix } from '../helpers/redis.js';
import { requireKafka, requireRedis, uniqueName } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const sets = loadFeatureSets('features');
const set = sets.get('transaction_v2')!;
const retention = retentionFor([...sets.values()]);
const PARTITIONS = 6;
const DAYS = 10;
const START = Date.parse('2018-04-01T00:00:00Z');
const rows: HandbookRow[] = handbookRows(
  generateTransactions({ seed: 31, days: DAYS, customers: 400, terminals: 200, perDay: 1800 }).filter(
    (x) => x.t < START + DAYS * DAY_MS,
  ),
);

describe('two workers in one consumer group, one killed mid-stream', () => {
  const topics = uniqueTopics('cg');
  const groupId = uniqueName('cg-group');
  const prefix = uniqueName('cg');
  let kafka: Kafka;
  let admin: Admin;
  let redis: Redis;
  let env: NodeJS.ProcessEnv;
  const workers: { name: string; child: ChildProcess; out: string[] }[] = [];

  beforeAll(async () => {
    const { brokers } = await requireKafka();
    const { url } = await requireRedis();
    kafka = new Kafka({ clientId: 'consumer-group-test', brokers, logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    await createTopics(admin, topics, PARTITIONS);
    redis = new Redis(url);
    env = {
      ...process.env,
      REDIS_URL: url,
      REDIS_CLUSTER_NODES: '',
      KAFKA_BROKERS: brokers.join(','),
      KAFKA_GROUP_ID: groupId,
      KAFKA_TOPIC_TRANSACTIONS: topics.transactions,
      KAFKA_TOPIC_LABELS: topics.labels,
      KAFKA_TOPIC_DEAD_LETTER: topics.deadLetter,
      REDIS_KEY_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
    };
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => stopChild(w.child, 15_000)));
    await admin?.deleteTopics({ topics: Object.values(topics) }).catch(() => {});
    await admin?.disconnect();
    if (redis) {
      await deleteByPrefix(redis, prefix);
      await redis.quit();
    }
  });

  it('ends with the features of the backfill after the survivor takes over the killed worker’s partitions', async () => {
    for (const name of ['cg-worker-a', 'cg-worker-b']) workers.push(startWorker(name, env));
    const [a, b] = workers as [(typeof workers)[0], (typeof workers)[0]];
    await waitFor(
      async () => {
        const m = await members(admin, groupId);
        return m.length === 2 && m.every((x) => x.partitions > 0);
      },
      60_000,
      'both workers to join the group',
      () => workers.map((w) => `${w.name}: ${w.out.join('').slice(-2000)}`).join('\n'),
    );
    const before = await members(admin, groupId);
    const bPartitions = before.find((m) => m.clientId === 'cg-worker-b')!.assignment;

    // Replay at a steady rate so that the kill lands while events are still arriving.
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    let sent = 0;
    const replaying = replay(arrayRows(rows), topicSink(producer, topics), {
      rate: 4000,
      batchSize: 250,
      onProgress: (n) => (sent = n),
    });

    // Kill B once it has committed progress on its partitions, i.e. in the middle of its work.
    await waitFor(
      async () => (await committed(admin, groupId, bPartitions)) > 0 && sent > rows.length * 0.3,
      60_000,
      'worker B to commit some progress',
    );
    const killedAt = { sent, committedByB: await committed(admin, groupId, bPartitions) };
    b.child.kill('SIGKILL');
    const killedMs = Date.now();
    const counts = await replaying;
    await producer.disconnect();
    expect(killedAt.sent).toBeLessThan(rows.length);
    expect(counts.transactions).toBe(rows.length);

    // The group evicts B after its session timeout; A then owns every partition and drains them.
    await waitFor(
      async () => {
        const m = await members(admin, groupId);
        return m.length === 1 && m[0]!.clientId === 'cg-worker-a' && m[0]!.partitions === 2 * PARTITIONS;
      },
      90_000,
      'worker A to take over all partitions',
      () => a.out.join('').slice(-3000),
    );
    const takeoverMs = Date.now() - killedMs;
    await waitFor(
      async () => (await lag(admin, groupId, [topics.transactions, topics.labels])) === 0,
      90_000,
      'worker A to catch up',
      () => a.out.join('').slice(-3000),
    );
    const drainedMs = Date.now() - killedMs;
    expect(a.child.exitCode).toBeNull();

    // Exactly once per entity: every transaction stored once and every label once, redeliveries notwithstanding.
    const store = new RedisFeatureStore(redis, { prefix, retention });
    const state = await entityState(store, rows);
    expect(state.customer).toEqual({ txs: rows.length, labels: counts.labels, repeated: 0 });
    expect(state.terminal).toEqual({ txs: rows.length, labels: counts.labels, repeated: 0 });

    // And the features of every transaction of the last day equal the in-memory backfill.
    const dir = await mkdtemp(join(tmpdir(), 'cg-'));
    try {
      await backfillToCsv(arrayRows(rows), { set, output: join(dir, 'features.csv') });
      const offline = parseFeatures(readFileSync(join(dir, 'features.csv'), 'utf8'), set.names);
      const lastDay = rows.filter((r) => r.t > rows[rows.length - 1]!.t - DAY_MS);
      expect(lastDay.length).toBeGreaterThan(1000);
      let compared = 0;
      for (let i = 0; i < lastDay.length; i += 200) {
        const slice = lastDay.slice(i, i + 200);
        const windows = await store.summarize(slice.flatMap((r) => set.summaryQueries(r)));
        const per = set.entities.length;
        slice.forEach((r, k) => {
          const online = [...set.compute(r, windows.slice(k * per, (k + 1) * per))];
          expect(online, r.id).toEqual(offline.get(r.id));
          compared++;
        });
      }
      expect(compared).toBe(lastDay.length);
      const risk = set.names.indexOf('TERMINAL_ID_RISK_7DAY_WINDOW');
      expect(lastDay.some((r) => offline.get(r.id)![risk]! > 0)).toBe(true);
      console.info(
        `consumer group: ${rows.length} transactions + ${counts.labels} labels over ${2 * PARTITIONS} partitions; ` +
          `worker B (partitions ${JSON.stringify(bPartitions)}) SIGKILLed after ${killedAt.sent} sent and ` +
          `${killedAt.committedByB} committed by B; A owned all partitions ${(takeoverMs / 1000).toFixed(1)} s ` +
          `after the kill, lag 0 after ${(drainedMs / 1000).toFixed(1)} s; ${compared} last-day feature vectors equal`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

// ------------------------------------------------------------------------------------------------ helpers

function startWorker(name: string, env: NodeJS.ProcessEnv) {
  return { name, ...spawnCli('worker', { ...env, KAFKA_CLIENT_ID: name }) };
}

type Assignment = Record<string, number[]>;

async function members(admin: Admin, groupId: string) {
  const { groups } = await admin.describeGroups([groupId]);
  const g = groups[0];
  if (g?.state !== 'Stable') return [];
  return g.members.map((m) => {
    const decoded = m.memberAssignment.length
      ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment)
      : null;
    const assignment: Assignment = decoded?.assignment ?? {};
    return {
      clientId: m.clientId,
      assignment,
      partitions: Object.values(assignment).reduce((n, ps) => n + ps.length, 0),
    };
  });
}

/** Sum of the committed offsets of the group on the given partitions. */
async function committed(admin: Admin, groupId: string, assignment: Assignment): Promise<number> {
  const offsets = await admin.fetchOffsets({ groupId, topics: Object.keys(assignment) });
  let n = 0;
  for (const t of offsets)
    for (const p of t.partitions)
      if (assignment[t.topic]?.includes(p.partition) && Number(p.offset) > 0) n += Number(p.offset);
  return n;
}

/** Messages not yet committed by the group, over every partition of the topics. */
async function lag(admin: Admin, groupId: string, topics: string[]): Promise<number> {
  const offsets = await admin.fetchOffsets({ groupId, topics });
  let n = 0;
  for (const topic of topics) {
    const high = await admin.fetchTopicOffsets(topic);
    const done = offsets.find((o) => o.topic === topic)?.partitions ?? [];
    for (const p of high) {
      const c = Number(done.find((d) => d.partition === p.partition)?.offset ?? -1);
      n += Number(p.high) - Math.max(0, c);
    }
  }
  return n;
}

/**
 * Per entity kind, through the store's own reads over all time: transactions stored, transactions labelled
 * fraud, and entities holding a transaction id twice (a redelivery applied again).
 */
async function entityState(store: RedisFeatureStore, rows: readonly HandbookRow[]) {
  const out: Record<string, { txs: number; labels: number; repeated: number }> = {};
  for (const [kind, key] of [
    ['customer', 'customer_id'],
    ['terminal', 'terminal_id'],
  ] as const) {
    const ids = [...new Set(rows.map((r) => r[key]))];
    const s = { txs: 0, labels: 0, repeated: 0 };
    for (let i = 0; i < ids.length; i += 200) {
      const windows = await store.read(
        ids.slice(i, i + 200).map((id) => ({ entity: kind, id, from: 0, to: 4_102_444_800_000 })),
      );
      for (const w of windows) {
        const got = w.ids.slice(w.start, w.end);
        s.txs += got.length;
        if (new Set(got).size !== got.length) s.repeated++;
        for (let k = w.start; k < w.end; k++) s.labels += w.fraud[k]!;
      }
    }
    out[kind] = s;
  }
  return out;
}
