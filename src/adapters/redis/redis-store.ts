import { readFileSync } from 'node:fs';
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import {
  type ApplyOutcome,
  type EntityKey,
  type FeatureStore,
  NO_RECORDS,
  type RecordColumns,
  type RetentionPolicy,
  type StoreEvent,
  type WindowQuery,
} from '../../ports/feature-store.js';

const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
const OUTCOMES: readonly ApplyOutcome[] = ['applied', 'duplicate', 'late'];
/** Events per script call: enough to spread the call's fixed cost, few enough not to stall reads for long. */
const EVENTS_PER_CALL = 64;

interface ScriptCommands {
  /** numberOfKeys, then the keys, then the arguments (see lua/apply.lua). */
  fsApply(numberOfKeys: number, ...args: (string | number)[]): Promise<number[]>;
}
type Client = (Redis | Cluster) & ScriptCommands;

export interface RedisStoreOptions {
  /** Namespace of every key, e.g. `fs`. */
  readonly prefix: string;
  readonly retention: RetentionPolicy;
  /**
   * How much event time may pass before an entity's expiry is pushed back (default: a quarter of the horizon).
   * Idle entities expire after the horizon plus this (wall clock) without an event.
   */
  readonly ttlRefreshMs?: number;
}

/**
 * Feature store on Redis or Redis Cluster. Each entity lives in three keys that share one hash tag,
 * `<prefix>:{<entity>:<id>}:{z,d,l}` (layout in lua/apply.lua), so each write script touches one slot and runs
 * atomically, and a read is two plain commands.
 */
export class RedisFeatureStore implements FeatureStore {
  readonly kind: string;
  private readonly client: Client;
  private readonly ttlMs: number;
  private readonly ttlRefreshMs: number;

  constructor(
    client: Redis | Cluster,
    private readonly options: RedisStoreOptions,
  ) {
    client.defineCommand('fsApply', { lua: lua('apply') });
    this.client = client as Client;
    this.kind = client.isCluster ? 'redis-cluster' : 'redis';
    this.ttlRefreshMs = options.ttlRefreshMs ?? Math.ceil(options.retention.horizonMs / 4);
    this.ttlMs = options.retention.horizonMs + this.ttlRefreshMs;
  }

  private keys(k: EntityKey): [string, string, string] {
    const base = `${this.options.prefix}:{${k.entity}:${k.id}}`;
    return [`${base}:z`, `${base}:d`, `${base}:l`];
  }

  async apply(events: readonly StoreEvent[]): Promise<ApplyOutcome[]> {
    if (events.length === 0) return [];
    // A call may only touch one slot on a cluster; a single node takes any mix, in order.
    const groups = this.client.isCluster
      ? groupBy(events, (e) => slotOf(this.keys(e.key)[0]))
      : [events.map((_, i) => i)];
    const calls: number[][] = groups.flatMap((g) => chunks(g, EVENTS_PER_CALL));
    const send = (c: Client, idx: readonly number[]) => {
      const keys: string[] = [];
      const args: (string | number)[] = [this.options.retention.horizonMs, this.ttlMs, this.ttlRefreshMs];
      for (const i of idx) {
        const e = events[i]!;
        keys.push(...this.keys(e.key));
        args.push(e.kind, e.txId, e.t, e.kind === 'tx' ? String(e.amount) : e.fraud ? '1' : '0');
      }
      return c.fsApply(keys.length, ...keys, ...args);
    };
    let replies: number[][];
    if (this.client.isCluster) {
      replies = await Promise.all(calls.map((idx) => send(this.client, idx)));
    } else {
      const p = (this.client as Redis).pipeline() as unknown as Client & {
        exec(): Promise<[Error | null, unknown][] | null>;
      };
      for (const idx of calls) void send(p, idx);
      replies = ((await p.exec()) ?? []).map(([err, v]) => {
        if (err) throw err;
        return v as number[];
      });
    }
    const out: ApplyOutcome[] = new Array(events.length);
    calls.forEach((idx, c) => {
      idx.forEach((i, k) => {
        out[i] = OUTCOMES[Number(replies[c]![k])] ?? 'applied';
      });
    });
    return out;
  }

  /** Two plain commands per entity, no script: ZRANGEBYSCORE for the window, HGETALL for its labels. */
  async read(queries: readonly WindowQuery[]): Promise<RecordColumns[]> {
    if (queries.length === 0) return [];
    const send = (p: ReturnType<Redis['pipeline']>, q: WindowQuery) => {
      const [z, , l] = this.keys(q);
      p.zrangebyscore(z, `(${q.from}`, q.to, 'WITHSCORES');
      p.hgetall(l);
    };
    const pipelines = this.client.isCluster
      ? // A cluster pipeline must stay within one slot: one per entity, run side by side.
        queries.map((q) => {
          const p = this.client.pipeline();
          send(p, q);
          return p.exec();
        })
      : [
          (() => {
            const p = this.client.pipeline();
            for (const q of queries) send(p, q);
            return p.exec();
          })(),
        ];
    const replies = (await Promise.all(pipelines)).flatMap((r) => r ?? []);
    return queries.map((_, i) => {
      const [zErr, rows] = replies[2 * i]!;
      const [lErr, labels] = replies[2 * i + 1]!;
      if (zErr || lErr) throw zErr ?? lErr;
      return parseWindow(rows as string[], labels as Record<string, string>);
    });
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    await this.client.quit();
  }
}

/** ZRANGEBYSCORE … WITHSCORES rows ("<seq> <amount> <id>", t) and the label hash → columns in arrival order. */
function parseWindow(rows: readonly string[], labels: Record<string, string>): RecordColumns {
  const n = rows.length / 2;
  if (n === 0) return NO_RECORDS;
  const ids: string[] = new Array(n);
  const t = new Float64Array(n);
  const seq = new Float64Array(n);
  const amount = new Float64Array(n);
  const fraud = new Uint8Array(n);
  let anyLabel = false;
  for (const _ in labels) {
    anyLabel = true;
    break;
  }
  for (let i = 0; i < n; i++) {
    const member = rows[2 * i]!;
    const a = member.indexOf(' ');
    const b = member.indexOf(' ', a + 1);
    const id = member.slice(b + 1);
    ids[i] = id;
    seq[i] = Number(member.slice(0, a));
    amount[i] = Number(member.slice(a + 1, b));
    t[i] = Number(rows[2 * i + 1]);
    if (anyLabel && labels[id]?.endsWith('|1')) fraud[i] = 1;
  }
  return { start: 0, end: n, ids, t, seq, amount, fraud };
}

function slotOf(key: string): number {
  return calculateSlot(key);
}

/** Indexes of `xs` grouped by key, each group in the original order. */
function groupBy<T>(xs: readonly T[], key: (x: T) => number): number[][] {
  const groups = new Map<number, number[]>();
  xs.forEach((x, i) => {
    const k = key(x);
    const g = groups.get(k);
    if (g) g.push(i);
    else groups.set(k, [i]);
  });
  return [...groups.values()];
}

function chunks<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}
