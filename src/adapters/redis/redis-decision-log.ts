import type { Cluster, Redis } from 'ioredis';
import type { Labelled } from '../../domain/performance/delong.js';
import {
  addField,
  binOf,
  DECISION_CODE,
  type DecisionRole,
  emptyCounts,
  latencyHours,
  type OutcomeCounts,
  packDecision,
  pendingMember,
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

const DAY_MS = 86_400_000;

/** One transaction's decisions: HSET version → packed record, and the horizon as its TTL. */
const RECORD = `
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;

/**
 * One label on one version, atomically on the version's keys (one hash slot): KEYS pending zset, watermark,
 * the decision day's counters and labels. What the outcome was before: the label kept for the transaction, else
 * nothing if it was still pending, else a matured non-fraud if its decision is at or before the watermark.
 * A repeated label is a duplicate (0); otherwise the previous outcome is taken back, the new one counted, the
 * label kept, and the latency counted on the first explicit label. Returns 1 new, 2 corrected.
 */
const LABEL = `
local tx, label, bin, dec, at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local prev = redis.call('HGET', KEYS[4], tx)
local before = nil
local matured = false
if prev then
  before = string.sub(prev, 1, 1)
  if before == label then return 0 end
elseif redis.call('ZREM', KEYS[1], ARGV[6]) == 0 then
  local w = redis.call('GET', KEYS[2])
  if w and at <= tonumber(w) then before = '0'; matured = true end
end
local c = KEYS[3]
if before then
  redis.call('HINCRBY', c, (before == '1' and 'f' or 'n') .. bin, -1)
  redis.call('HINCRBY', c, 'c' .. dec .. before, -1)
  redis.call('HINCRBY', c, matured and 'm' or 'e', -1)
end
redis.call('HINCRBY', c, (label == '1' and 'f' or 'n') .. bin, 1)
redis.call('HINCRBY', c, 'c' .. dec .. label, 1)
redis.call('HINCRBY', c, 'e', 1)
if not prev then redis.call('HINCRBY', c, 'h' .. ARGV[7], 1) end
redis.call('HSET', KEYS[4], tx, label .. ARGV[9])
redis.call('PEXPIREAT', c, ARGV[8])
redis.call('PEXPIREAT', KEYS[4], ARGV[8])
if prev then return 2 end
return 1`;

/**
 * Up to ARGV[2] pending decisions made at or before ARGV[1], oldest first, become matured non-fraud outcomes
 * on their decision day's counters (ARGV[3] .. day, in the same hash slot); the watermark moves to the newest
 * matured decision time. Returns how many matured.
 */
const MATURE = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local w = tonumber(redis.call('GET', KEYS[2]) or '-1')
local n = 0
for i = 1, #due, 2 do
  local m, at = due[i], tonumber(due[i + 1])
  redis.call('ZREM', KEYS[1], m)
  local bar = string.find(m, '|', 1, true)
  local day = math.floor(at / 86400000)
  local c = ARGV[3] .. string.format('%d', day)
  redis.call('HINCRBY', c, 'n' .. string.sub(m, 2, bar - 1), 1)
  redis.call('HINCRBY', c, 'c' .. string.sub(m, 1, 1) .. '0', 1)
  redis.call('HINCRBY', c, 'm', 1)
  redis.call('PEXPIREAT', c, string.format('%.0f', (day + 1) * 86400000 + tonumber(ARGV[4])))
  if at > w then w = at end
  n = n + 1
end
if n > 0 then redis.call('SET', KEYS[2], string.format('%.0f', w)) end
return n`;

interface Commands {
  fsDecisionRecord(key: string, ttlMs: number, ...fieldsAndValues: string[]): Promise<number>;
  fsDecisionLabel(...keysAndArgs: (string | number)[]): Promise<number>;
  fsDecisionMature(...keysAndArgs: (string | number)[]): Promise<number>;
}
type Client = (Redis | Cluster) & Commands;

export interface RedisDecisionLogOptions {
  readonly prefix: string;
  readonly clock: Clock;
  /** LABEL_HORIZON_DAYS in ms: how long decisions, and outcomes per decision day, are kept. */
  readonly horizonMs: number;
}

/**
 * The decision log on Redis or Redis Cluster.
 * - `<prefix>:dl:<model>:<transaction id>`: a hash, field = version, value = the packed decision
 *   (`Ad<time base 36>:<score>`), TTL the horizon: about 100 bytes of Redis memory per transaction.
 * - per version, in one hash slot `{<prefix>:perf:<model>:<version>}`: `:p` the pending decisions by decision
 *   time (a sorted set, emptied by labels and maturity), `:w` the maturity watermark, `:c:<day>` the counters
 *   and `:l:<day>` the last label per transaction of the decisions made that UTC day (expiring a horizon after it).
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
    client.defineCommand('fsDecisionRecord', { numberOfKeys: 1, lua: RECORD });
    client.defineCommand('fsDecisionLabel', { numberOfKeys: 4, lua: LABEL });
    client.defineCommand('fsDecisionMature', { numberOfKeys: 2, lua: MATURE });
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
    const pending = new Map<string, (string | number)[]>();
    const writes: Promise<unknown>[] = entries.map((e) =>
      this.client.fsDecisionRecord(
        this.tx(model, e.transactionId),
        this.o.horizonMs,
        ...e.decisions.flatMap((d) => {
          const args = pending.get(d.version) ?? [];
          pending.set(d.version, args);
          args.push(d.at, pendingMember(d.decision, binOf(d.score), e.transactionId));
          return [d.version, packDecision(d)];
        }),
      ),
    );
    for (const [version, args] of pending)
      writes.push(this.client.zadd(`${this.tag(model, version)}:p`, ...args));
    const roles = new Map(entries.flatMap((e) => e.decisions.map((d) => [d.version, d.role] as const)));
    for (const [version, role] of roles) {
      const key = `${model}/${version}/${role}`;
      if (this.known.has(key)) continue;
      writes.push(
        this.client.hset(`${this.o.prefix}:perf:${model}:versions`, version, ROLE_CODE[role]).then(() => {
          for (const k of this.known) if (k.startsWith(`${model}/${version}/`)) this.known.delete(k);
          this.known.add(key);
        }),
      );
    }
    await Promise.all(writes);
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
            const bin = binOf(d.score);
            return [
              this.client
                .fsDecisionLabel(
                  `${tag}:p`,
                  `${tag}:w`,
                  `${tag}:c:${day}`,
                  `${tag}:l:${day}`,
                  l.transactionId,
                  l.fraud ? '1' : '0',
                  bin,
                  DECISION_CODE[d.decision],
                  d.at,
                  pendingMember(d.decision, bin, l.transactionId),
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

  async mature(model: string, before: number, limit: number): Promise<number> {
    const versions = await this.versions(model);
    const counts = await Promise.all(
      [...versions.keys()].map((version) => {
        const tag = this.tag(model, version);
        return this.client.fsDecisionMature(
          `${tag}:p`,
          `${tag}:w`,
          before,
          limit,
          `${tag}:c:`,
          this.o.horizonMs,
        );
      }),
    );
    return counts.reduce((a, b) => a + b, 0);
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

  async counts(model: string, version: string, fromDay: number): Promise<OutcomeCounts> {
    const tag = this.tag(model, version);
    const hashes = await Promise.all(this.days(fromDay).map((d) => this.client.hgetall(`${tag}:c:${d}`)));
    const out = emptyCounts();
    for (const h of hashes) for (const [f, v] of Object.entries(h)) addField(out, f, Number(v));
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
