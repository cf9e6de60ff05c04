import type { Cluster, Redis } from 'ioredis';

/** Issues exactly one command on the client or pipeline it is given; returns the client's promise of its reply. */
export type Issue<C> = (client: C) => unknown;

/**
 * Items of many callers that one command can carry (e.g. keys a script reads): the items of a turn go out as one
 * command per `max` of them on a single node, one command per item on a Cluster (where each key may be in a slot
 * of its own).
 */
export interface Coalesced<C, I, R> {
  readonly max: number;
  /** Issues one command for `items` (1 ≤ length ≤ max). */
  issue(client: C, items: readonly I[]): unknown;
  /** The command's reply → one result per item, in order; an Error among them rejects that item alone. */
  split(reply: unknown, items: readonly I[]): R[];
}

interface Queued<C> {
  readonly issues: readonly Issue<C>[];
  resolve(replies: unknown[]): void;
  reject(err: unknown): void;
}

interface Item<C> {
  readonly item: unknown;
  readonly kind: Coalesced<C, unknown, unknown>;
  resolve(result: unknown): void;
  reject(err: unknown): void;
}

/**
 * The commands every caller issues during one turn of the event loop, sent as one pipeline on the next
 * `setImmediate`: one socket write and one read of the replies for all the requests of that turn (the feature
 * reads, the answer claims, the answers kept), instead of a write per command. ioredis' own
 * `enableAutoPipelining` flushes per tick and measured slower here (see the performance notes). Items that one
 * command can carry (`item`) go out as few commands as their kind allows: a command's dispatch, on the client and
 * on the Redis every replica shares, costs about as much as the little most of them do.
 *
 * On a cluster each command goes straight to its slot's master (ioredis routes it), so the commands run side by
 * side there. A reply that is an error rejects only its caller's promise (its items' callers for a coalesced one).
 */
export class TurnPipeline<C extends Redis | Cluster = Redis | Cluster> {
  private queued: Queued<C>[] = [];
  private items: Item<C>[] = [];

  constructor(readonly client: C) {}

  /** The replies of `issues`, in order. */
  exec(issues: readonly Issue<C>[]): Promise<unknown[]> {
    if (issues.length === 0) return Promise.resolve([]);
    if (this.client.isCluster) return Promise.all(issues.map((issue) => issue(this.client)));
    return new Promise((resolve, reject) => {
      this.queued.push({ issues, resolve, reject });
      this.schedule();
    });
  }

  /** The result for `item`, carried with the other items of its kind issued in this turn. */
  item<I, R>(kind: Coalesced<C, I, R>, item: I): Promise<R> {
    if (this.client.isCluster)
      return Promise.resolve(kind.issue(this.client, [item])).then((reply) => {
        const [result] = splitChecked(kind, reply, [item]);
        if (result instanceof Error) throw result;
        return result as R;
      });
    return new Promise<R>((resolve, reject) => {
      this.items.push({
        item,
        kind: kind as Coalesced<C, unknown, unknown>,
        resolve: resolve as (r: unknown) => void,
        reject,
      });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.queued.length + this.items.length === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const queued = this.queued;
    const items = this.items;
    this.queued = [];
    this.items = [];
    const failAll = (err: unknown) => {
      for (const q of queued) q.reject(err);
      for (const it of items) it.reject(err);
    };
    let exec: ReturnType<ReturnType<Redis['pipeline']>['exec']>;
    const carried: Item<C>[][] = [];
    try {
      const p = (this.client as Redis).pipeline() as unknown as C;
      for (const q of queued) for (const issue of q.issues) issue(p);
      for (const group of byKind(items)) {
        const max = group[0]!.kind.max;
        for (let i = 0; i < group.length; i += max) {
          const chunk = group.slice(i, i + max);
          chunk[0]!.kind.issue(
            p,
            chunk.map((it) => it.item),
          );
          carried.push(chunk);
        }
      }
      exec = (p as unknown as ReturnType<Redis['pipeline']>).exec();
    } catch (err) {
      // Nobody awaits this turn's callback: whatever goes wrong here must reach every waiting caller.
      failAll(err);
      return;
    }
    exec.then((replies) => {
      const all = replies ?? [];
      let at = 0;
      for (const { issues, resolve, reject } of queued) {
        const mine = all.slice(at, at + issues.length);
        at += issues.length;
        const failed = mine.find(([err]) => err);
        if (failed || mine.length < issues.length) reject(failed?.[0] ?? new Error('pipeline aborted'));
        else resolve(mine.map(([, v]) => v));
      }
      for (const chunk of carried) settle(chunk, all[at++]);
    }, failAll);
  }
}

/** Resolves each item of a coalesced command from its reply, or rejects them all. */
function settle<C>(chunk: readonly Item<C>[], reply: [Error | null, unknown] | undefined): void {
  let results: unknown[];
  try {
    if (!reply) throw new Error('pipeline aborted');
    if (reply[0]) throw reply[0];
    results = splitChecked(
      chunk[0]!.kind,
      reply[1],
      chunk.map((it) => it.item),
    );
  } catch (err) {
    for (const it of chunk) it.reject(err);
    return;
  }
  chunk.forEach((it, k) => {
    const result = results[k];
    if (result instanceof Error) it.reject(result);
    else it.resolve(result);
  });
}

/** `kind.split`, refusing a reply that does not answer every item. */
function splitChecked<C, I, R>(kind: Coalesced<C, I, R>, reply: unknown, items: readonly I[]): unknown[] {
  const results = kind.split(reply, items);
  if (results.length !== items.length)
    throw new Error(`a coalesced command answered ${results.length} results for ${items.length} items`);
  return results;
}

function byKind<C>(items: readonly Item<C>[]): Item<C>[][] {
  if (items.length === 0) return [];
  const first = items[0]!.kind;
  if (items.every((it) => it.kind === first)) return [items as Item<C>[]];
  const groups = new Map<Coalesced<C, unknown, unknown>, Item<C>[]>();
  for (const it of items) {
    const g = groups.get(it.kind);
    if (g) g.push(it);
    else groups.set(it.kind, [it]);
  }
  return [...groups.values()];
}
