import type { Cluster, Redis } from 'ioredis';
import type { AnswerEntry, AnswerStore, Claim } from '../../ports/answer-store.js';
import { type Coalesced, TurnPipeline } from './turn-pipeline.js';

/**
 * Replaces pending claims by their answers, each only while the claim is the caller's: per key of KEYS, ARGV holds
 * its pending value, its answered value and the answer's ttl in ms. Returns per key 1 replaced, 0 not the caller's.
 */
const COMPLETE = `
local out = {}
for k = 1, #KEYS do
  local a = 3 * k - 2
  if redis.call('GET', KEYS[k]) == ARGV[a] then
    redis.call('SET', KEYS[k], ARGV[a + 1], 'PX', ARGV[a + 2])
    out[k] = 1
  else
    out[k] = 0
  end
end
return out`;

interface CompleteItem {
  readonly key: string;
  readonly pending: string;
  readonly answered: string;
  readonly ttlMs: number;
}

/**
 * The answers kept in a turn in one call per 64 on a single node, instead of one each (its dispatch was most of
 * its cost), bounded so that one call never holds Redis long.
 */
const COMPLETES: Coalesced<Redis | Cluster, CompleteItem, number> = {
  max: 64,
  issue(c, items) {
    const args: (string | number)[] = [items.length];
    for (const it of items) args.push(it.key);
    for (const it of items) args.push(it.pending, it.answered, it.ttlMs);
    return (c as Client).fsAnswerComplete(...args);
  },
  split: (reply) => reply as number[],
};

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
  /** `numberOfKeys`, the keys, then per key its pending value, answered value and ttl in ms (COMPLETE). */
  fsAnswerComplete(...keysAndArgs: (string | number)[]): Promise<number[]>;
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
    const ttl = Math.max(1, Math.ceil(ttlMs));
    await Promise.all(
      entries.map(({ id, fingerprint, answer }) =>
        this.pipeline.item(COMPLETES, {
          key: this.key(id),
          pending: `P${fingerprint}`,
          answered: `A${fingerprint}\n${answer}`,
          ttlMs: ttl,
        }),
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
