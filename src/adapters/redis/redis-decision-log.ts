import type { Cluster, Redis } from 'ioredis';
import { DAY_MS } from '../../domain/features/time.js';
import type { Labelled } from '../../domain/performance/delong.js';
import {
  addField,
  binOf,
  DECISION_CODE,
  type DecisionRole,
  decisionFields,
  emptyCounts,
  latencyHours,
  matureDay,
  mergeCounts,
  type OutcomeCounts,
  packDecision,
  ROLE_CODE,
  ROLE_OF,
  unpackDecision,
} from '../../domain/performance/outcomes.js';
import type { Clock } from '../../ports/clock.js';
import type {
  DecisionEntry,
  DecisionLog,
  LabelFact,
  LabelResult,
  VersionLabel,
} from '../../ports/decision-log.js';
import type { Issue, TurnPipeline } from './turn-pipeline.js';

/**
 * The decisions of one or more transactions (KEYS, one per transaction): per key, ARGV holds its number of
 * decisions and then version, packed record pairs; each key is HSET and kept a horizon (ARGV[1] ms).
 */
const RECORD = `
local a = 2
for k = 1, #KEYS do
  local last = a + 2 * tonumber(ARGV[a])
  for i = a + 1, last, 2 do redis.call('HSET', KEYS[k], ARGV[i], ARGV[i + 1]) end
  redis.call('PEXPIRE', KEYS[k], ARGV[1])
  a = last + 1
end
return #KEYS`;

/**
 * Transactions per record call on a single node: one script call instead of one per transaction (the call's
 * dispatch was most of its cost, on the client and on the Redis every replica shares), bounded so that one call
 * never holds Redis long. On a Cluster every transaction's key has a slot of its own: one call each.
 */
const RECORD_BATCH = 64;

/** Every decision of a version on a day: HINCRBY each field of ARGV[2..] on its counters, kept until ARGV[1]. */
const COUNT = `
for i = 2, #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[i], 1) end
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1`;

/**
 * One label on one version, atomically on the version's keys of its decision day (one hash slot): KEYS the
 * counters and the labels. A repeated label is a duplicate (0); otherwise the previous explicit outcome, if
 * any, is taken back and the new one counted, the label kept, and on the first label the explicit outcome and
 * its latency counted. Returns 1 new, 2 corrected.
 */
const LABEL = `
local tx, label, bin, dec = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local prev = redis.call('HGET', KEYS[2], tx)
local before = prev and string.sub(prev, 1, 1)
if before == label then return 0 end
local c = KEYS[1]
if before then
  redis.call('HINCRBY', c, (before == '1' and 'f' or 'n') .. bin, -1)
  redis.call('HINCRBY', c, 'c' .. dec .. before, -1)
end
redis.call('HINCRBY', c, (label == '1' and 'f' or 'n') .. bin, 1)
redis.call('HINCRBY', c, 'c' .. dec .. label, 1)
if not prev then
  redis.call('HINCRBY', c, 'e', 1)
  redis.call('HINCRBY', c, 'h' .. ARGV[5], 1)
end
redis.call('HSET', KEYS[2], tx, label .. ARGV[7])
redis.call('PEXPIREAT', c, ARGV[6])
redis.call('PEXPIREAT', KEYS[2], ARGV[6])
if prev then return 2 end
return 1`;

interface Commands {
  /** `numberOfKeys`, the keys, then the horizon in ms and, per key, its decision count and pairs (RECORD). */
  fsDecisionRecord(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<number>;
  fsDecisionCount(key: string, expireAt: number, ...fields: string[]): Promise<number>;
  fsDecisionLabel(...keysAndArgs: (string | number)[]): Promise<number>;
}
type Client = (Redis | Cluster) & Commands;

export interface RedisDecisionLogOptions {
  readonly prefix: string;
  readonly clock: Clock;
  /** LABEL_HORIZON_DAYS in ms: how long decisions, and outcomes per decision day, are kept. */
  readonly horizonMs: number;
  /**
   * The API's per-turn pipeline: decisions recorded in a turn go in the same write as that turn's answers and
   * feature reads, not in writes of their own.
   */
  readonly pipeline?: TurnPipeline;
}

/**
 * The decision log on Redis or Redis Cluster.
 * - `<prefix>:dl:<model>:<transaction id>`: a hash, field = version, value = the packed decision
 *   (`Ad<time base 36>:<score>`), TTL the horizon: about 100 bytes of Redis memory per transaction.
 * - per version, in one hash slot `{<prefix>:perf:<model>:<version>}`: `:c:<day>` the counters (every decision
 *   by score bin and decision, explicit outcomes, latency) and `:l:<day>` the last label per transaction, of the
 *   decisions made that UTC day, expiring a horizon after it. Their size follows the occupied score bins and the
 *   labels, not the decisions: an unlabelled decision costs its transaction hash alone.
 * - `<prefix>:perf:<model>:versions` (version → role) and `<prefix>:perf:<model>:u:<day>` (unscored labels).
 */
export class RedisDecisionLog implements DecisionLog {
  readonly kind = 'redis';
  private readonly client: Client;
  private readonly known = new Set<string>();

  constructor(
    client: Redis | Cluster,
    private readonly o: RedisDecisionLogOptions,
  ) {
    client.defineCommand('fsDecisionRecord', { lua: RECORD });
    client.defineCommand('fsDecisionCount', { numberOfKeys: 1, lua: COUNT });
    client.defineCommand('fsDecisionLabel', { numberOfKeys: 2, lua: LABEL });
    this.client = client as Client;
  }

  private tx(model: string, id: string): string {
    return `${this.o.prefix}:dl:${model}:${id}`;
  }

  private tag(model: string, version: string): string {
    return `{${this.o.prefix}:perf:${model}:${version}}`;
  }

  private expiresAt(day: number): number {
    return (day + 1) * DAY_MS + this.o.horizonMs;
  }

  async record(model: string, entries: readonly DecisionEntry[]): Promise<void> {
    const counted = new Map<string, { key: string; day: number; fields: string[] }>();
    const issues: Issue<Client>[] = [];
    const per = this.client.isCluster ? 1 : RECORD_BATCH;
    for (let i = 0; i < entries.length; i += per) {
      const keys: string[] = [];
      const args: (string | number)[] = [this.o.horizonMs];
      for (const e of entries.slice(i, i + per)) {
        keys.push(this.tx(model, e.transactionId));
        args.push(e.decisions.length);
        for (const d of e.decisions) {
          const day = Math.floor(d.at / DAY_MS);
          const key = `${this.tag(model, d.version)}:c:${day}`;
          const c = counted.get(key) ?? { key, day, fields: [] };
          counted.set(key, c);
          c.fields.push(...decisionFields({ bin: binOf(d.score), decision: d.decision }));
          args.push(d.version, packDecision(d));
        }
      }
      issues.push((c) => c.fsDecisionRecord(keys.length, ...keys, ...args));
    }
    // One call per version and decision day: the counters of a whole batch.
    for (const c of counted.values()) {
      const expireAt = this.expiresAt(c.day);
      issues.push((client) => client.fsDecisionCount(c.key, expireAt, ...c.fields));
    }
    const roles = new Map(entries.flatMap((e) => e.decisions.map((d) => [d.version, d.role] as const)));
    const learnt: string[] = [];
    for (const [version, role] of roles) {
      const key = `${model}/${version}/${role}`;
      if (this.known.has(key)) continue;
      learnt.push(key);
      issues.push((c) => c.hset(`${this.o.prefix}:perf:${model}:versions`, version, ROLE_CODE[role]));
    }
    await (this.o.pipeline
      ? this.o.pipeline.exec(issues as Issue<Redis | Cluster>[])
      : Promise.all(issues.map((issue) => issue(this.client))));
    for (const key of learnt) {
      const version = key.slice(0, key.lastIndexOf('/'));
      for (const k of this.known) if (k.startsWith(`${version}/`)) this.known.delete(k);
      this.known.add(key);
    }
  }

  async label(model: string, labels: readonly LabelFact[]): Promise<LabelResult[]> {
    const held = await Promise.all(labels.map((l) => this.client.hgetall(this.tx(model, l.transactionId))));
    return Promise.all(
      labels.map(async (l, i): Promise<LabelResult> => {
        const fields = Object.entries(held[i]!);
        if (fields.length === 0) return { unscored: true, outcome: await this.unscoredLabel(model, l) };
        const versions = await Promise.all(
          fields.flatMap(([version, packed]) => {
            const d = unpackDecision(packed);
            if (!d) return [];
            const day = Math.floor(d.at / DAY_MS);
            const tag = this.tag(model, version);
            return [
              this.client
                .fsDecisionLabel(
                  `${tag}:c:${day}`,
                  `${tag}:l:${day}`,
                  l.transactionId,
                  l.fraud ? '1' : '0',
                  binOf(d.score),
                  DECISION_CODE[d.decision],
                  latencyHours(l.labelledAt, d.at),
                  this.expiresAt(day),
                  String(Number(d.score.toPrecision(9))),
                )
                .then(
                  (r): VersionLabel => ({
                    version,
                    role: d.role,
                    decision: d.decision,
                    outcome: r === 0 ? 'duplicate' : r === 1 ? 'new' : 'corrected',
                  }),
                ),
            ];
          }),
        );
        return { unscored: false, versions };
      }),
    );
  }

  private async unscoredLabel(model: string, l: LabelFact): Promise<'new' | 'duplicate'> {
    const day = Math.floor(l.transactionAt / DAY_MS);
    const key = `${this.o.prefix}:perf:${model}:u:${day}`;
    const [added] = await Promise.all([
      this.client.hset(key, l.transactionId, l.fraud ? '1' : '0'),
      this.client.sadd(`${this.o.prefix}:perf:${model}:udays`, String(day)),
    ]);
    await Promise.all([
      this.client.pexpire(key, this.o.horizonMs),
      this.client.pexpire(`${this.o.prefix}:perf:${model}:udays`, this.o.horizonMs),
    ]);
    return added === 1 ? 'new' : 'duplicate';
  }

  async versions(model: string): Promise<ReadonlyMap<string, DecisionRole>> {
    const all = await this.client.hgetall(`${this.o.prefix}:perf:${model}:versions`);
    return new Map(
      Object.entries(all)
        .filter(([, code]) => ROLE_OF[code])
        .sort(([a], [b]) => Number(a) - Number(b))
        .map(([v, code]) => [v, ROLE_OF[code]!]),
    );
  }

  /** The decision days worth reading: from `fromDay`, and none older than the horizon, up to tomorrow. */
  private days(fromDay: number): number[] {
    const today = Math.floor(this.o.clock.now() / DAY_MS);
    const first = Math.max(fromDay, today - Math.ceil(this.o.horizonMs / DAY_MS) - 1);
    return Array.from({ length: Math.max(0, today + 2 - first) }, (_, i) => first + i);
  }

  async counts(
    model: string,
    version: string,
    fromDay: number,
    maturedThroughDay: number,
  ): Promise<OutcomeCounts> {
    const tag = this.tag(model, version);
    const days = this.days(fromDay);
    const hashes = await Promise.all(days.map((d) => this.client.hgetall(`${tag}:c:${d}`)));
    const out = emptyCounts();
    hashes.forEach((h, i) => {
      const c = emptyCounts();
      for (const [f, v] of Object.entries(h)) addField(c, f, Number(v));
      if (days[i]! <= maturedThroughDay) matureDay(c);
      mergeCounts(out, c);
    });
    return out;
  }

  async labelled(model: string, version: string, fromDay: number): Promise<Map<string, Labelled>> {
    const tag = this.tag(model, version);
    const hashes = await Promise.all(this.days(fromDay).map((d) => this.client.hgetall(`${tag}:l:${d}`)));
    const out = new Map<string, Labelled>();
    for (const h of hashes)
      for (const [id, v] of Object.entries(h))
        out.set(id, { fraud: v[0] === '1', score: Number(v.slice(1)) });
    return out;
  }

  async unscored(model: string): Promise<number> {
    const days = await this.client.smembers(`${this.o.prefix}:perf:${model}:udays`);
    const lens = await Promise.all(
      days.map((d) => this.client.hlen(`${this.o.prefix}:perf:${model}:u:${d}`)),
    );
    return lens.reduce((a, b) => a + b, 0);
  }
}
