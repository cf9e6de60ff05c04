import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';
import type { Clock } from '../../ports/clock.js';
import type { WorkerProgress, WorkerProgressStore } from '../../ports/worker-progress.js';

const script = readFileSync(new URL('./lua/progress.lua', import.meta.url), 'utf8');

interface ProgressCommands {
  fsProgress(numberOfKeys: 1, key: string, ...args: (string | number)[]): Promise<number>;
}

export interface RedisProgressOptions {
  /** Namespace of every key, e.g. `fs`: the hash is `<prefix>:workers`. */
  readonly prefix: string;
  /** Wall clock, to tell expired records (the readers') from live ones. */
  readonly clock: Clock;
  /** A record this long without a write is gone (default 60 s). */
  readonly ttlMs?: number;
}

/**
 * Worker progress in one Redis hash, `<prefix>:workers`: a field per worker, `<at> <progressAt> <lag>`. A
 * write is one script call (HSET, drop records older than the TTL, PEXPIRE the hash); a read one HGETALL. The
 * client is the feature store's, shared: this store never closes it.
 */
export class RedisProgressStore implements WorkerProgressStore {
  private readonly client: (Redis | Cluster) & ProgressCommands;
  private readonly key: string;
  private readonly ttlMs: number;

  constructor(
    client: Redis | Cluster,
    private readonly options: RedisProgressOptions,
  ) {
    client.defineCommand('fsProgress', { lua: script });
    this.client = client as (Redis | Cluster) & ProgressCommands;
    this.key = `${options.prefix}:workers`;
    this.ttlMs = Math.ceil(options.ttlMs ?? 60_000);
  }

  async record(p: WorkerProgress): Promise<void> {
    for (const v of [p.at, p.progressAt, p.lag])
      if (!Number.isFinite(v)) throw new RangeError(`progress values must be finite: ${JSON.stringify(p)}`);
    await this.client.fsProgress(
      1,
      this.key,
      p.member,
      Math.round(p.at),
      Math.round(p.progressAt),
      Math.round(p.lag),
      this.ttlMs,
    );
  }

  async remove(member: string): Promise<void> {
    await this.client.hdel(this.key, member);
  }

  async readAll(): Promise<WorkerProgress[]> {
    const all = await this.client.hgetall(this.key);
    const oldest = this.options.clock.now() - this.ttlMs;
    const out: WorkerProgress[] = [];
    for (const [member, value] of Object.entries(all)) {
      const [at, progressAt, lag] = value.split(' ').map(Number);
      if (!(at! >= oldest) || !Number.isFinite(progressAt) || !Number.isFinite(lag)) continue;
      out.push({ member, at: at!, progressAt: progressAt!, lag: lag! });
    }
    return out;
  }
}
