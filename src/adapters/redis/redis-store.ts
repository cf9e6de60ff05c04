import { readFileSync } from 'node:fs';
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
const SCRIPTS = {
  fsApplyTx: lua('apply_tx'),
  fsApplyLabel: lua('apply_label'),
  fsReadWindow: lua('read_window'),
};
const OUTCOMES: readonly ApplyOutcome[] = ['applied', 'duplicate', 'late'];

type Reply = (string | number)[];
interface ScriptCommands {
  fsApplyTx(
    k1: string,
    k2: string,
    k3: string,
    id: string,
    t: number,
    amount: string,
    horizon: number,
    ttl: number,
  ): Promise<number>;
  fsApplyLabel(
    k1: string,
    k2: string,
    k3: string,
    id: string,
    t: number,
    fraud: number,
    horizon: number,
    ttl: number,
  ): Promise<number>;
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
    for (const [name, lua] of Object.entries(SCRIPTS)) client.defineCommand(name, { numberOfKeys: 3, lua });
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
    const { horizonMs } = this.options.retention;
    const send = (c: Client, e: StoreEvent) =>
      e.kind === 'tx'
        ? c.fsApplyTx(...this.keys(e.key), e.txId, e.t, String(e.amount), horizonMs, this.ttlMs)
        : c.fsApplyLabel(...this.keys(e.key), e.txId, e.t, e.fraud ? 1 : 0, horizonMs, this.ttlMs);
    let codes: number[];
    if (this.client.isCluster) {
      // A cluster pipeline must stay within one slot; commands to one node still go out in order on its connection.
      codes = await Promise.all(events.map((e) => send(this.client, e)));
    } else {
      const p = (this.client as Redis).pipeline() as unknown as Client & {
        exec(): Promise<[Error | null, unknown][] | null>;
      };
      for (const e of events) void send(p, e);
      const results = (await p.exec()) ?? [];
      codes = results.map(([err, v]) => {
        if (err) throw err;
        return Number(v);
      });
    }
    return codes.map((c) => OUTCOMES[c] ?? 'applied');
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
