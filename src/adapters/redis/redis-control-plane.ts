import type { Cluster, Redis } from 'ioredis';
import {
  type ReplicaStatus,
  ReplicaStatusSchema,
  type ServingRoles,
  type ServingState,
  ServingStateSchema,
} from '../../domain/models/serving-state.js';
import type { Clock } from '../../ports/clock.js';
import type { ControlPlane } from '../../ports/control-plane.js';

/** Compare-and-set on the generation, and the change notification, in one atomic step. */
const WRITE = `
local current = redis.call('GET', KEYS[1])
local generation = 0
if current then generation = tonumber(cjson.decode(current).generation) end
if generation ~= tonumber(ARGV[1]) then return false end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`;

/** Drops the replicas whose heartbeat expired, then records this one's; both keys outlive the last beat. */
const HEARTBEAT = `
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #dead > 0 then
  redis.call('ZREM', KEYS[1], unpack(dead))
  redis.call('HDEL', KEYS[2], unpack(dead))
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1`;

interface Commands {
  fsControlWrite(
    key: string,
    expected: number,
    json: string,
    channel: string,
    model: string,
  ): Promise<1 | null>;
  fsControlBeat(
    zset: string,
    hash: string,
    now: number,
    expires: number,
    id: string,
    json: string,
    ttl: number,
  ): Promise<1>;
}
type Client = (Redis | Cluster) & Commands;

/**
 * The control plane on Redis or Redis Cluster. Per model, under one hash tag (one slot): `…:desired` (the
 * state as JSON), `…:replicas` (a sorted set of replica ids by heartbeat expiry, epoch ms) and `…:status`
 * (a hash of their statuses). Changes are announced on the channel `<prefix>:control` with the model's name.
 */
export class RedisControlPlane implements ControlPlane {
  readonly kind: string;
  private readonly client: Client;
  private readonly channel: string;
  private readonly subscribers: (Redis | Cluster)[] = [];

  constructor(
    client: Redis | Cluster,
    private readonly prefix: string,
    private readonly clock: Clock,
  ) {
    this.kind = 'isCluster' in client && client.isCluster ? 'redis-cluster' : 'redis';
    client.defineCommand('fsControlWrite', { numberOfKeys: 1, lua: WRITE });
    client.defineCommand('fsControlBeat', { numberOfKeys: 2, lua: HEARTBEAT });
    this.client = client as Client;
    this.channel = `${prefix}:control`;
  }

  private key(model: string, part: 'desired' | 'replicas' | 'status'): string {
    return `${this.prefix}:{ctl:${model}}:${part}`;
  }

  async read(model: string): Promise<ServingState | undefined> {
    const raw = await this.client.get(this.key(model, 'desired'));
    return raw === null ? undefined : ServingStateSchema.parse(JSON.parse(raw));
  }

  async write(
    model: string,
    expected: number,
    roles: ServingRoles,
    by: string,
  ): Promise<ServingState | undefined> {
    const state: ServingState = ServingStateSchema.parse({
      ...roles,
      generation: expected + 1,
      updated_at: new Date(this.clock.now()).toISOString(),
      updated_by: by,
    });
    const ok = await this.client.fsControlWrite(
      this.key(model, 'desired'),
      expected,
      JSON.stringify(state),
      this.channel,
      model,
    );
    return ok === 1 ? state : undefined;
  }

  async subscribe(onChange: (model: string) => void): Promise<() => Promise<void>> {
    // A subscribed connection can do nothing else: a copy of the client, resubscribed by ioredis on reconnect.
    // It queues while (re)connecting even when the client it copies fails fast: a subscription is no request.
    const waitForIt = { enableOfflineQueue: true, maxRetriesPerRequest: null };
    const sub =
      'isCluster' in this.client && this.client.isCluster
        ? (this.client as Cluster).duplicate(undefined, { ...waitForIt, redisOptions: waitForIt })
        : (this.client as Redis).duplicate(waitForIt);
    let listening = true;
    sub.on('error', () => {});
    sub.on('message', (channel: string, model: string) => {
      if (listening && channel === this.channel) onChange(model);
    });
    this.subscribers.push(sub);
    await sub.subscribe(this.channel);
    return async () => {
      // disconnect() is not immediate: messages already on the wire must not reach the caller any more.
      listening = false;
      this.subscribers.splice(this.subscribers.indexOf(sub), 1);
      sub.disconnect();
    };
  }

  async heartbeat(model: string, status: ReplicaStatus, ttlMs: number): Promise<void> {
    const now = this.clock.now();
    await this.client.fsControlBeat(
      this.key(model, 'replicas'),
      this.key(model, 'status'),
      now,
      now + ttlMs,
      status.replica,
      JSON.stringify(status),
      Math.ceil(ttlMs * 2),
    );
  }

  async replicas(model: string): Promise<ReplicaStatus[]> {
    const ids = await this.client.zrangebyscore(this.key(model, 'replicas'), `(${this.clock.now()}`, '+inf');
    if (ids.length === 0) return [];
    const raw = await this.client.hmget(this.key(model, 'status'), ...ids);
    return raw
      .flatMap((r) => (r === null ? [] : [ReplicaStatusSchema.parse(JSON.parse(r))]))
      .sort((a, b) => a.replica.localeCompare(b.replica));
  }

  /** Closes the subscriptions; the client is the caller's. */
  async close(): Promise<void> {
    for (const s of this.subscribers.splice(0)) s.disconnect();
  }
}
