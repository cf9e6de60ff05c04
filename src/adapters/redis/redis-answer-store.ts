import type { Cluster, Redis } from 'ioredis';
import type { AnswerEntry, AnswerStore, Claim } from '../../ports/answer-store.js';
import { type Coalesced, type Issue, TurnPipeline } from './turn-pipeline.js';

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

/**
 * Claims: per key of KEYS, `SET key ARGV[2k-1] PX ARGV[2k] NX GET`; returns per key what held it, or '' when
 * nothing did and the caller now does (a held value is never empty: it starts with P or A), or that key's own
 * error (a key that is not a string fails its claim alone).
 */
const CLAIM = `
local out = {}
for k = 1, #KEYS do
  out[k] = redis.pcall('SET', KEYS[k], ARGV[2 * k - 1], 'PX', ARGV[2 * k], 'NX', 'GET') or ''
end
return out`;

/**
 * Claims per CLAIM call: the claims of a turn's requests in one call (on a single node) instead of a SET each,
 * whose dispatch cost the client and the shared Redis more than the SET.
 */
const CLAIMS_PER_CALL = 64;

interface ClaimItem {
  readonly key: string;
  readonly pending: string;
  readonly ttlMs: number;
}

const CLAIMS: Coalesced<Redis | Cluster, ClaimItem, string | null> = {
  max: CLAIMS_PER_CALL,
  issue(c, items) {
    const args: (string | number)[] = [items.length];
    for (const it of items) args.push(it.key);
    for (const it of items) args.push(it.pending, it.ttlMs);
    return (c as Client).fsAnswerClaim(...args);
  },
  split: (reply) =>
    (reply as (string | Error)[]).map((held) => (held === '' ? null : held)) as (string | null)[],
};

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

interface Commands {
  /** `numberOfKeys`, the keys, then per key its pending value and ttl in ms (CLAIM). */
  fsAnswerClaim(...keysAndArgs: (string | number)[]): Promise<string[]>;
  /** `numberOfKeys`, the keys, then the ttl in ms and, per key, its pending and answered values (COMPLETE). */
  fsAnswerComplete(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<number>;
  fsAnswerRelease(key: string, pending: string): Promise<number>;
}
type Client = (Redis | Cluster) & Commands;

/**
 * Answers on Redis or Redis Cluster: one string key per transaction id, `<prefix>:ans:<id>`, holding `P<fingerprint>`
 * while a replica computes and `A<fingerprint>\n<answer>` once answered. A claim is a `SET … NX PX … GET`, so
 * the claims of a request go out together and cost one round trip: on a single node, in the turn's pipeline,
 * alongside the feature reads of that turn when the two stores share it (`pipeline`), the claims of every request
 * of the turn in one script call per CLAIMS_PER_CALL (CLAIM).
 */
export class RedisAnswerStore implements AnswerStore {
  private readonly pipeline: TurnPipeline;

  constructor(
    client: Redis | Cluster,
    private readonly prefix: string,
    pipeline?: TurnPipeline,
  ) {
    client.defineCommand('fsAnswerClaim', { lua: CLAIM });
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
    const ttlMs = Math.max(1, Math.ceil(pendingTtlMs));
    return Promise.all(
      entries.map(({ id, fingerprint }) =>
        this.pipeline.item(CLAIMS, { key: this.key(id), pending: `P${fingerprint}`, ttlMs }),
      ),
    ).then((held) => held.map((h): Claim => (h === null ? { state: 'claimed' } : parse(h))));
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
