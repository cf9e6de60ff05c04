import { readFileSync } from 'node:fs';
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import {
  type ApplyOutcome,
  type EntityKey,
  latestEventTime,
  NO_RECORDS,
  type RecordColumns,
  type RetentionPolicy,
  type StoreEvent,
  type WindowQuery,
} from '../../domain/features/records.js';
import type { FutureLimit } from '../../ports/clock.js';
import type { FeatureStore } from '../../ports/feature-store.js';

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
  /** Events dated beyond it are refused as `future` and never sent to Redis: no newest time, trim or expiry moves. */
  readonly limit?: FutureLimit;
}

/**
 * Feature store on Redis or Redis Cluster. Each entity is one hash, `<prefix>:{<entity>:<id>}` (layout in
 * lua/apply.lua): a write touches one key, atomically, and a read is one HVALS. The braces are a hash tag, so
 * an entity's slot depends on the entity alone; on a cluster one script call takes the writes of one slot.
 */
export class RedisFeatureStore implements FeatureStore {
  readonly kind: string;
  private readonly client: Client;
  private readonly horizonMs: number;
  private readonly ttlMs: number;
  private readonly ttlRefreshMs: number;
  private queuedReads: QueuedRead[] = [];

  constructor(
    client: Redis | Cluster,
    private readonly options: RedisStoreOptions,
  ) {
    client.defineCommand('fsApply', { lua: lua('apply') });
    this.client = client as Client;
    this.kind = client.isCluster ? 'redis-cluster' : 'redis';
    // Whole milliseconds for PEXPIRE; with integer event times a rounded-up horizon refuses and trims the same.
    this.horizonMs = Math.ceil(options.retention.horizonMs);
    this.ttlRefreshMs = Math.ceil(options.ttlRefreshMs ?? this.horizonMs / 4);
    this.ttlMs = this.horizonMs + this.ttlRefreshMs;
  }

  private key(k: EntityKey): string {
    return `${this.options.prefix}:{${k.entity}:${k.id}}`;
  }

  async apply(events: readonly StoreEvent[]): Promise<ApplyOutcome[]> {
    if (events.length === 0) return [];
    for (const e of events)
      if (!Number.isSafeInteger(e.t)) throw new RangeError(`event time must be whole milliseconds: ${e.t}`);
    const out: ApplyOutcome[] = new Array(events.length);
    const limit = this.options.limit;
    const latest = limit ? latestEventTime(limit.clock.now(), limit.maxFutureMs) : Number.POSITIVE_INFINITY;
    const accepted: number[] = [];
    events.forEach((e, i) => {
      if (e.t > latest) out[i] = 'future';
      else accepted.push(i);
    });
    if (accepted.length === 0) return out;
    const keys = events.map((e) => this.key(e.key));
    // A call may only touch one slot on a cluster; a single node takes any mix, in order.
    const groups = this.client.isCluster
      ? groupBy(accepted, (i) => slotOf(keys[i]!)).map((g) => g.map((k) => accepted[k]!))
      : [accepted];
    const calls: number[][] = groups.flatMap((g) => chunks(g, EVENTS_PER_CALL));
    const send = (c: Client, idx: readonly number[]) => {
      const args: (string | number)[] = [idx.length];
      for (const i of idx) args.push(keys[i]!);
      args.push(this.horizonMs, this.ttlMs, this.ttlRefreshMs);
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
    calls.forEach((idx, c) => {
      idx.forEach((i, k) => {
        out[i] = OUTCOMES[Number(replies[c]![k])] ?? 'applied';
      });
    });
    return out;
  }

  /**
   * One HVALS per entity, no script. On a single node the reads of one event-loop turn share one pipeline (one
   * write and one read syscall for all the requests in flight, which is most of a read's cost under load).
   */
  read(queries: readonly WindowQuery[]): Promise<RecordColumns[]> {
    if (queries.length === 0) return Promise.resolve([]);
    if (this.client.isCluster) {
      // ioredis routes each command to its slot's master; they run side by side.
      return Promise.all(queries.map((q) => this.client.hvals(this.key(q)))).then((replies) =>
        queries.map((q, i) => parseEntity(replies[i]!, q, this.horizonMs)),
      );
    }
    return new Promise((resolve, reject) => {
      if (this.queuedReads.push({ queries, resolve, reject }) === 1) setImmediate(() => this.flushReads());
    });
  }

  private flushReads(): void {
    const reads = this.queuedReads;
    this.queuedReads = [];
    const failAll = (err: unknown) => {
      for (const r of reads) r.reject(err);
    };
    let exec: ReturnType<ReturnType<Redis['pipeline']>['exec']>;
    try {
      const p = this.client.pipeline();
      for (const r of reads) for (const q of r.queries) p.hvals(this.key(q));
      exec = p.exec();
    } catch (err) {
      // Nobody awaits this turn's callback: whatever goes wrong here must reach every waiting caller.
      failAll(err);
      return;
    }
    exec.then((replies) => {
      let at = 0;
      for (const { queries, resolve, reject } of reads) {
        const mine = (replies ?? []).slice(at, at + queries.length);
        at += queries.length;
        const failed = mine.find(([err]) => err);
        if (failed || mine.length < queries.length) reject(failed?.[0] ?? new Error('pipeline aborted'));
        else {
          try {
            resolve(queries.map((q, i) => parseEntity(mine[i]![1] as string[], q, this.horizonMs)));
          } catch (err) {
            reject(err);
          }
        }
      }
    }, failAll);
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    await this.client.quit();
  }
}

interface QueuedRead {
  readonly queries: readonly WindowQuery[];
  resolve(columns: RecordColumns[]): void;
  reject(err: unknown): void;
}

interface Row {
  readonly id: string;
  readonly t: number;
  readonly seq: number;
  readonly amount: number;
}

/**
 * The values of an entity's hash (see lua/apply.lua) → its transactions with from < t ≤ to, sorted by (t, seq),
 * labels joined. Transactions past the horizon may still be there (trimming waits for upkeep); they are left
 * out here, so a read sees exactly what an eagerly trimmed store holds.
 */
function parseEntity(values: readonly string[], q: WindowQuery, horizonMs: number): RecordColumns {
  let newest = Number.NEGATIVE_INFINITY;
  let fraudIds: Set<string> | undefined;
  const rows: Row[] = [];
  for (const v of values) {
    const a = v.indexOf(' ');
    const b = v.indexOf(' ', a + 1);
    const kind = v.charCodeAt(0);
    if (kind === HASH) newest = integer(v, a + 1, b);
    else if (kind === BANG) {
      if (v.charCodeAt(a + 1) === ONE) {
        fraudIds ??= new Set();
        fraudIds.add(v.slice(b + 1));
      }
    } else {
      const c = v.indexOf(' ', b + 1);
      const t = integer(v, 0, a);
      if (t > q.from && t <= q.to)
        rows.push({ id: v.slice(c + 1), t, seq: integer(v, a + 1, b), amount: Number(v.slice(b + 1, c)) });
    }
  }
  const from = newest - horizonMs;
  const kept = rows.filter((r) => r.t > from).sort((x, y) => x.t - y.t || x.seq - y.seq);
  const n = kept.length;
  if (n === 0) return NO_RECORDS;
  const ids: string[] = new Array(n);
  const t = new Float64Array(n);
  const seq = new Float64Array(n);
  const amount = new Float64Array(n);
  const fraud = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = kept[i]!;
    ids[i] = r.id;
    t[i] = r.t;
    seq[i] = r.seq;
    amount[i] = r.amount;
    if (fraudIds?.has(r.id)) fraud[i] = 1;
  }
  return { start: 0, end: n, ids, t, seq, amount, fraud };
}

/** The integer written in v[from, to) — event times and arrival numbers — without a substring per number. */
function integer(v: string, from: number, to: number): number {
  const negative = v.charCodeAt(from) === MINUS;
  let n = 0;
  for (let i = negative ? from + 1 : from; i < to; i++) n = n * 10 + v.charCodeAt(i) - ZERO;
  return negative ? -n : n;
}

const MINUS = '-'.charCodeAt(0);
const ZERO = '0'.charCodeAt(0);
const HASH = '#'.charCodeAt(0);
const BANG = '!'.charCodeAt(0);
const ONE = '1'.charCodeAt(0);

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
