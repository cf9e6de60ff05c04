import { readFileSync } from 'node:fs';
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import {
  type ApplyOutcome,
  columnsOf,
  type EntityKey,
  type FeatureStore,
  type RecordColumns,
  type RetentionPolicy,
  type StoreEvent,
  type TxRecord,
  type WindowQuery,
} from '../../ports/feature-store.js';

const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
const OUTCOMES: readonly ApplyOutcome[] = ['applied', 'duplicate', 'late'];
/** Events per script call: enough to spread the call's fixed cost, few enough not to stall reads for long. */
const EVENTS_PER_CALL = 64;

type Reply = (string | number)[];
interface ScriptCommands {
  /** numberOfKeys, then the keys, then the arguments (see lua/apply.lua). */
  fsApply(numberOfKeys: number, ...args: (string | number)[]): Promise<number[]>;
  fsReadWindow(k1: string, k2: string, k3: string, from: number, to: number): Promise<Reply>;
}
type Client = (Redis | Cluster) & ScriptCommands;

export interface RedisStoreOptions {
  /** Namespace of every key, e.g. `fs`. */
  readonly prefix: string;
  readonly retention: RetentionPolicy;
  /** Idle entities expire after this long without an event (wall clock). */
  readonly ttlMs?: number;
}

/**
 * Feature store on Redis or Redis Cluster. Each entity lives in three keys that share one hash tag,
 * `<prefix>:{<entity>:<id>}:{z,d,l}`, so each script touches one slot and runs atomically.
 */
export class RedisFeatureStore implements FeatureStore {
  readonly kind: string;
  private readonly client: Client;
  private readonly ttlMs: number;

  constructor(
    client: Redis | Cluster,
    private readonly options: RedisStoreOptions,
  ) {
    client.defineCommand('fsApply', { lua: lua('apply') });
    client.defineCommand('fsReadWindow', { numberOfKeys: 3, lua: lua('read_window') });
    this.client = client as Client;
    this.kind = client.isCluster ? 'redis-cluster' : 'redis';
    this.ttlMs = options.ttlMs ?? options.retention.horizonMs;
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
      const args: (string | number)[] = [this.options.retention.horizonMs, this.ttlMs];
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

  async read(queries: readonly WindowQuery[]): Promise<RecordColumns[]> {
    const replies = await Promise.all(
      queries.map((q) => this.client.fsReadWindow(...this.keys(q), q.from, q.to)),
    );
    return replies.map((r) => columnsOf(parseWindow(r)));
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    await this.client.quit();
  }
}

function parseWindow(reply: Reply): TxRecord[] {
  const out: TxRecord[] = [];
  for (let i = 0; i < reply.length; i += 4) {
    const detail = String(reply[i + 2]);
    const bar = detail.indexOf('|');
    out.push({
      id: String(reply[i]),
      t: Number(reply[i + 1]),
      seq: Number(detail.slice(0, bar)),
      amount: Number(detail.slice(bar + 1)),
      fraud: Number(reply[i + 3]) === 1,
    });
  }
  // ZRANGEBYSCORE orders equal times by member name; features need arrival order.
  return out.sort((a, b) => a.t - b.t || a.seq - b.seq);
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
