import type { Cluster, Redis } from 'ioredis';

/** Issues exactly one command on the client or pipeline it is given; returns the client's promise of its reply. */
export type Issue<C> = (client: C) => unknown;

interface Queued<C> {
  readonly issues: readonly Issue<C>[];
  resolve(replies: unknown[]): void;
  reject(err: unknown): void;
}

/**
 * The commands every caller issues during one turn of the event loop, sent as one pipeline on the next
 * `setImmediate`: one socket write and one read of the replies for all the requests of that turn (the feature
 * reads, the answer claims, the answers kept), instead of a write per command. ioredis' own
 * `enableAutoPipelining` flushes per tick and measured slower here (see the performance notes).
 *
 * On a cluster each command goes straight to its slot's master (ioredis routes it), so the commands run side by
 * side there. A reply that is an error rejects only its caller's promise.
 */
export class TurnPipeline<C extends Redis | Cluster = Redis | Cluster> {
  private queued: Queued<C>[] = [];

  constructor(readonly client: C) {}

  /** The replies of `issues`, in order. */
  exec(issues: readonly Issue<C>[]): Promise<unknown[]> {
    if (issues.length === 0) return Promise.resolve([]);
    if (this.client.isCluster) return Promise.all(issues.map((issue) => issue(this.client)));
    return new Promise((resolve, reject) => {
      if (this.queued.push({ issues, resolve, reject }) === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const queued = this.queued;
    this.queued = [];
    const failAll = (err: unknown) => {
      for (const q of queued) q.reject(err);
    };
    let exec: ReturnType<ReturnType<Redis['pipeline']>['exec']>;
    try {
      const p = (this.client as Redis).pipeline();
      for (const q of queued) for (const issue of q.issues) issue(p as unknown as C);
      exec = p.exec();
    } catch (err) {
      // Nobody awaits this turn's callback: whatever goes wrong here must reach every waiting caller.
      failAll(err);
      return;
    }
    exec.then((replies) => {
      let at = 0;
      for (const { issues, resolve, reject } of queued) {
        const mine = (replies ?? []).slice(at, at + issues.length);
        at += issues.length;
        const failed = mine.find(([err]) => err);
        if (failed || mine.length < issues.length) reject(failed?.[0] ?? new Error('pipeline aborted'));
        else resolve(mine.map(([, v]) => v));
      }
    }, failAll);
  }
}
