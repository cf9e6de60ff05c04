import type { Cluster, Redis } from 'ioredis';
import type { AnswerStore, Claim } from '../../ports/answer-store.js';
import { TurnPipeline } from './turn-pipeline.js';

/** Replaces a pending claim by its answer, only while the claim is the caller's. */
const COMPLETE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

interface Commands {
  fsAnswerComplete(key: string, pending: string, answered: string, ttlMs: number): Promise<number>;
  fsAnswerRelease(key: string, pending: string): Promise<number>;
}
type Client = (Redis | Cluster) & Commands;

/**
 * Answers on Redis or Redis Cluster: one string key per transaction id, `<prefix>:ans:<id>`, holding `P<fingerprint>`
 * while a replica computes and `A<fingerprint>\n<answer>` once answered. A claim is one `SET … NX PX … GET`, so
 * the claims of a request go out together and cost one round trip: on a single node, in the turn's pipeline,
 * alongside the feature reads of that turn when the two stores share it (`pipeline`).
 */
export class RedisAnswerStore implements AnswerStore {
  private readonly pipeline: TurnPipeline;

  constructor(
    client: Redis | Cluster,
    private readonly prefix: string,
    pipeline?: TurnPipeline,
  ) {
    client.defineCommand('fsAnswerComplete', { numberOfKeys: 1, lua: COMPLETE });
    client.defineCommand('fsAnswerRelease', { numberOfKeys: 1, lua: RELEASE });
    this.pipeline = pipeline ?? new TurnPipeline(client);
  }

  private async one(issue: (c: Client) => unknown): Promise<unknown> {
    return (await this.pipeline.exec([(c) => issue(c as Client)]))[0];
  }

  private key(id: string): string {
    return `${this.prefix}:ans:${id}`;
  }

  claim(entries: readonly { id: string; fingerprint: string }[], pendingTtlMs: number): Promise<Claim[]> {
    const ttl = Math.max(1, Math.ceil(pendingTtlMs));
    return this.pipeline
      .exec(
        entries.map(
          ({ id, fingerprint }) =>
            (c) =>
              c.set(this.key(id), `P${fingerprint}`, 'PX', ttl, 'NX', 'GET'),
        ),
      )
      .then((held) => held.map((h) => (h === null ? { state: 'claimed' as const } : parse(h as string))));
  }

  async complete(id: string, fingerprint: string, answer: string, ttlMs: number): Promise<void> {
    await this.one((c) =>
      c.fsAnswerComplete(
        this.key(id),
        `P${fingerprint}`,
        `A${fingerprint}\n${answer}`,
        Math.max(1, Math.ceil(ttlMs)),
      ),
    );
  }

  async release(id: string, fingerprint: string): Promise<void> {
    await this.one((c) => c.fsAnswerRelease(this.key(id), `P${fingerprint}`));
  }

  async peek(id: string): Promise<Claim | undefined> {
    const held = (await this.one((c) => c.get(this.key(id)))) as string | null;
    return held === null ? undefined : parse(held);
  }
}

function parse(held: string): Claim {
  if (held.startsWith('P')) return { state: 'pending', fingerprint: held.slice(1) };
  const nl = held.indexOf('\n');
  return { state: 'answered', fingerprint: held.slice(1, nl), answer: held.slice(nl + 1) };
}
