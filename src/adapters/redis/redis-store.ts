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
  fsApply(...args: (string | number)[]): Promise<number[]>;
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
 * Feature store on Redis or Redis Cluster. Each entity is one hash, `<prefix>:{<entity>:<id>}` (layout in
 * lua/apply.lua): a write touches one key, atomically, and a read is one HGETALL. The braces are a hash tag, so
 * an entity's slot depends on the entity alone; on a cluster one script call takes the writes of one slot.
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

  private key(k: EntityKey): string {
    return `${this.options.prefix}:{${k.entity}:${k.id}}`;
  }

  async apply(events: readonly StoreEvent[]): Promise<ApplyOutcome[]> {
    if (events.length === 0) return [];
    const keys = events.map((e) => this.key(e.key));
    // A call may only touch one slot on a cluster; a single node takes any mix, in order.
    const groups = this.client.isCluster ? groupBy(keys, slotOf) : [events.map((_, i) => i)];
    const calls: number[][] = groups.flatMap((g) => chunks(g, EVENTS_PER_CALL));
    const send = (c: Client, idx: readonly number[]) => {
      const args: (string | number)[] = [idx.length];
      for (const i of idx) args.push(keys[i]!);
      args.push(this.options.retention.horizonMs, this.ttlMs, this.ttlRefreshMs);
      for (const i of idx) {
        const e = events[i]!;
        args.push(e.kind, e.txId, e.t, e.kind === 'tx' ? String(e.amount) : e.fraud ? '1' : '0');
      }
      return c.fsApply(...args);
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

  /** One HGETALL per entity, no script. */
  async read(queries: readonly WindowQuery[]): Promise<RecordColumns[]> {
    if (queries.length === 0) return [];
    let replies: Record<string, string>[];
    if (this.client.isCluster) {
      // ioredis routes each command to its slot's master; they run side by side.
      replies = await Promise.all(queries.map((q) => this.client.hgetall(this.key(q))));
    } else {
      const p = this.client.pipeline();
      for (const q of queries) p.hgetall(this.key(q));
      replies = ((await p.exec()) ?? []).map(([err, v]) => {
        if (err) throw err;
        return v as Record<string, string>;
      });
    }
    return queries.map((q, i) => parseEntity(replies[i]!, q, this.options.retention.horizonMs));
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    await this.client.quit();
  }
}

/**
 * An entity's hash (see lua/apply.lua) → its transactions with from < t ≤ to, sorted by (t, seq), labels
 * joined. Transactions past the horizon may still be there (trimming waits for upkeep); they are left out
 * here, so a read sees exactly what an eagerly trimmed store holds.
 */
function parseEntity(hash: Record<string, string>, q: WindowQuery, horizonMs: number): RecordColumns {
  const meta = hash[''];
  if (meta === undefined) return NO_RECORDS;
  const s1 = meta.indexOf(' ');
  const from = Math.max(q.from, Number(meta.slice(s1 + 1, meta.indexOf(' ', s1 + 1))) - horizonMs);
  const rows: { id: string; t: number; seq: number; amount: number }[] = [];
  let labels = false;
  for (const field in hash) {
    if (field === '') continue;
    if (field.charCodeAt(0) === 32) {
      labels = true;
      continue;
    }
    const v = hash[field]!;
    const a = v.indexOf(' ');
    const t = Number(v.slice(0, a));
    if (t <= from || t > q.to) continue;
    const b = v.indexOf(' ', a + 1);
    rows.push({ id: field, t, seq: Number(v.slice(a + 1, b)), amount: Number(v.slice(b + 1)) });
  }
  const n = rows.length;
  if (n === 0) return NO_RECORDS;
  rows.sort((x, y) => x.t - y.t || x.seq - y.seq);
  const ids: string[] = new Array(n);
  const t = new Float64Array(n);
  const seq = new Float64Array(n);
  const amount = new Float64Array(n);
  const fraud = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    ids[i] = r.id;
    t[i] = r.t;
    seq[i] = r.seq;
    amount[i] = r.amount;
    if (labels && hash[` ${r.id}`]?.endsWith(' 1')) fraud[i] = 1;
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
