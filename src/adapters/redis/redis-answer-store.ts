import type { Cluster, Redis } from 'ioredis';
import type { AnswerEntry, AnswerStore, Claim } from '../../ports/answer-store.js';
import { type Issue, TurnPipeline } from './turn-pipeline.js';

/**
 * Replaces pending claims by their answers, each only while the claim is the caller's: KEYS the answer keys,
 * ARGV[1] the answers' ttl in ms, then per key its pending and its answered value. Returns how many were replaced.
 */
const COMPLETE = `
local n = 0
for k = 1, #KEYS do
  if redis.call('GET', KEYS[k]) == ARGV[2 * k] then
    redis.call('SET', KEYS[k], ARGV[2 * k + 1], 'PX', ARGV[1])
    n = n + 1
  end
end
return n`;

/**
 * Answers per complete call on a single node: one script call instead of one per answer (its dispatch was most
 * of its cost), bounded so that one call never holds Redis long. On a Cluster each answer's key has a slot of its
 * own: one call each.
 */
const COMPLETE_BATCH = 64;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

interface Commands {
  /** `numberOfKeys`, the keys, then the ttl in ms and, per key, its pending and answered values (COMPLETE). */
  fsAnswerComplete(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<number>;
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
    client.defineCommand('fsAnswerComplete', { lua: COMPLETE });
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

  async complete(entries: readonly AnswerEntry[], ttlMs: number): Promise<void> {
    const per = this.pipeline.client.isCluster ? 1 : COMPLETE_BATCH;
    const issues: Issue<Client>[] = [];
    for (let i = 0; i < entries.length; i += per) {
      const keys: string[] = [];
      const args: (string | number)[] = [Math.max(1, Math.ceil(ttlMs))];
      for (const { id, fingerprint, answer } of entries.slice(i, i + per)) {
        keys.push(this.key(id));
        args.push(`P${fingerprint}`, `A${fingerprint}\n${answer}`);
      }
      issues.push((c) => c.fsAnswerComplete(keys.length, ...keys, ...args));
    }
    await this.pipeline.exec(issues as Issue<Redis | Cluster>[]);
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
