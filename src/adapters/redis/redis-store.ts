import { readFileSync } from 'node:fs';
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import { BoundedMap } from '../../domain/bounded-map.js';
import {
  type ApplyOutcome,
  type EntityKey,
  type Links,
  latestEventTime,
  NO_RECORDS,
  type RecordColumns,
  type RetentionPolicy,
  type StoreEvent,
  type SummaryQuery,
  type WindowQuery,
  type WindowSummary,
} from '../../domain/features/records.js';
import { clipBounds, TILE_LEVELS, TileColumnsBuilder, type TileLinks } from '../../domain/features/tiles.js';
import type { FutureLimit } from '../../ports/clock.js';
import type { FeatureStore } from '../../ports/feature-store.js';
import { decimal, integer, numbersIn } from './text-numbers.js';
import { type Coalesced, TurnPipeline } from './turn-pipeline.js';

const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
const OUTCOMES: readonly ApplyOutcome[] = ['applied', 'duplicate', 'late'];
/** Events per script call: enough to spread the call's fixed cost, few enough not to stall reads for long. */
const EVENTS_PER_CALL = 64;

interface ScriptCommands {
  /** numberOfKeys, then the keys, then the arguments (see lua/apply.lua). */
  fsApply(...args: (string | number)[]): Promise<number[]>;
  /** The entity's log and tiles keys, then the arguments (see lua/read.lua). */
  fsRead(log: string, tiles: string, ...args: (string | number)[]): Promise<string>;
  /** The entity's log and tiles keys (see lua/dump.lua). */
  fsDump(log: string, tiles: string): Promise<[string[], string[]]>;
  /** numberOfKeys, then the entities' log keys (see lua/log.lua): their logs, in order. */
  fsLog(numberOfKeys: number, ...logs: string[]): Promise<string[]>;
}
type Client = (Redis | Cluster) & ScriptCommands;

export interface RedisStoreOptions {
  /** Namespace of every key, e.g. `fs`. */
  readonly prefix: string;
  readonly retention: RetentionPolicy;
  /**
   * How much event time may pass before an entity's expiry is pushed back (default: a quarter of the horizon).
   * Idle entities expire after the horizon plus this (wall clock) without an event.
   */
  readonly ttlRefreshMs?: number;
  /** Events dated beyond it are refused as `future` and never sent to Redis: no newest time, trim or expiry moves. */
  readonly limit?: FutureLimit;
  /** The most fields an entity's log holds before the entity is kept as tiles (default LOG_FIELDS; 0: always tiles). */
  readonly logFields?: number;
  /** The per-turn pipeline of the client, shared with the other stores on it (default: one of its own). */
  readonly pipeline?: TurnPipeline;
}

/**
 * An entity whose log holds more fields than this (~250 transactions and labels in its horizon) is kept as time
 * tiles. Below it, reading the log whole (at most this many short values, a few KiB) is the cheapest read there
 * is; above it, a read along the tiles costs the same whatever the history.
 * Redis keeps hashes of up to 128 (default) or 512 fields in its compact encoding, where looking fields up one by
 * one costs a scan each: tiles pay off beyond that.
 */
export const LOG_FIELDS = 256;

/** Entities known to be kept as tiles, so that their reads go to the tiles at once: a few busy ones. */
const TILED_REMEMBERED = 10_000;

/**
 * Feature store on Redis or Redis Cluster (layout in lua/apply.lua). An entity is a log, `<prefix>:{<entity>:<id>}`,
 * one field per transaction or label — until it holds more than `logFields` fields; then it is kept as time tiles
 * in `<prefix>:{<entity>:<id>}:tiles` (domain/features/tiles.ts), and the log holds only its metadata (plus, per
 * linked entity, `…:newest:<name>`, the sorted set that counts distinct ids: DistinctCounts in records.ts; and
 * `…:labels`, the labels held without their transaction, for the trim). A write touches the entity's keys
 * atomically in one script; a scoring read is one script call that returns a small log whole as one string
 * (lua/log.lua: one bulk reply costs this process less than a reply per value, and Redis a little more), or one
 * that reads the tiles a window bound splits and the aggregates of the rest. The braces are a hash tag, so both
 * keys of an entity are in one slot; on a cluster one script call takes the writes of one slot. Upkeep of tiles
 * trims only the day tiles that fell past the horizon (bench/trim.ts), so no write does work that grows with the
 * entity's history.
 */
export class RedisFeatureStore implements FeatureStore {
  readonly kind: string;
  private readonly client: Client;
  private readonly horizonMs: number;
  private readonly ttlMs: number;
  private readonly ttlRefreshMs: number;
  private readonly logFields: number;
  private readonly pipeline: TurnPipeline;
  /** Logs of entities seen kept as tiles (least recently read first: it is forgotten first). */
  private readonly tiled = new BoundedMap<string, true>(TILED_REMEMBERED);

  constructor(
    client: Redis | Cluster,
    private readonly options: RedisStoreOptions,
  ) {
    client.defineCommand('fsApply', { lua: lua('apply') });
    client.defineCommand('fsRead', { lua: lua('read'), numberOfKeys: 2 });
    client.defineCommand('fsDump', { lua: lua('dump'), numberOfKeys: 2 });
    client.defineCommand('fsLog', { lua: lua('log') });
    this.client = client as Client;
    this.kind = client.isCluster ? 'redis-cluster' : 'redis';
    // Whole milliseconds for PEXPIRE; with integer event times a rounded-up horizon refuses and trims the same.
    this.horizonMs = Math.ceil(options.retention.horizonMs);
    this.ttlRefreshMs = Math.ceil(options.ttlRefreshMs ?? this.horizonMs / 4);
    this.ttlMs = this.horizonMs + this.ttlRefreshMs;
    this.logFields = options.logFields ?? LOG_FIELDS;
    this.pipeline = options.pipeline ?? new TurnPipeline(client);
  }

  /** The entity's log; its tiles are this plus `:tiles`. */
  private key(k: EntityKey): string {
    return `${this.options.prefix}:{${k.entity}:${k.id}}`;
  }

  async apply(events: readonly StoreEvent[]): Promise<ApplyOutcome[]> {
    if (events.length === 0) return [];
    for (const e of events)
      if (!Number.isSafeInteger(e.t)) throw new RangeError(`event time must be whole milliseconds: ${e.t}`);
    const out: ApplyOutcome[] = new Array(events.length);
    const limit = this.options.limit;
    const latest = limit ? latestEventTime(limit.clock.now(), limit.maxFutureMs) : Number.POSITIVE_INFINITY;
    const accepted: number[] = [];
    events.forEach((e, i) => {
      if (e.t > latest) out[i] = 'future';
      else accepted.push(i);
    });
    if (accepted.length === 0) return out;
    const keys = events.map((e) => this.key(e.key));
    // A call may only touch one slot on a cluster; a single node takes any mix, in order.
    const groups = this.client.isCluster
      ? groupBy(accepted, (i) => slotOf(keys[i]!)).map((g) => g.map((k) => accepted[k]!))
      : [accepted];
    const calls: number[][] = groups.flatMap((g) => chunks(g, EVENTS_PER_CALL));
    const send = (c: Client, idx: readonly number[]) => {
      const args: (string | number)[] = [2 * idx.length];
      for (const i of idx) args.push(keys[i]!, `${keys[i]!}${TILES}`);
      args.push(this.horizonMs, this.ttlMs, this.ttlRefreshMs, LEVELS_ARG, this.logFields);
      for (const i of idx) {
        const e = events[i]!;
        args.push(
          e.kind,
          e.txId,
          e.t,
          e.kind === 'tx' ? String(e.amount) : e.fraud ? '1' : '0',
          e.kind === 'tx' && e.links ? encodeLinks(e.links) : '',
        );
      }
      return c.fsApply(...args);
    };
    let replies: number[][];
    if (this.client.isCluster) {
      replies = await Promise.all(calls.map((idx) => send(this.client, idx)));
    } else {
      const p = (this.client as Redis).pipeline() as unknown as Client & {
        exec(): Promise<[Error | null, unknown][] | null>;
      };
      for (const idx of calls) void send(p, idx);
      replies = ((await p.exec()) ?? []).map(([err, v]) => {
        if (err) throw err;
        return v as number[];
      });
    }
    calls.forEach((idx, c) => {
      idx.forEach((i, k) => {
        out[i] = OUTCOMES[Number(replies[c]![k])] ?? 'applied';
      });
    });
    return out;
  }

  /**
   * Bounded reads: per entity, its log whole while it is one (bounded by `logFields`; lua/log.lua), or one
   * script call on its tiles (lua/read.lua; for entities known to be tiles at once, else after the log said so),
   * whose arguments are the windows' bounds and whose reply is only what counts — the aggregates of whole tiles and
   * the records of the tiles a bound splits, looked into only where they hold more than one record. Each is a
   * snapshot. When the entity's horizon cuts into the windows (a transaction scored long after newer events),
   * the tiles are read again with the cutoff as a bound.
   */
  async summarize(queries: readonly SummaryQuery[]): Promise<WindowSummary[]> {
    const out: WindowSummary[] = new Array(queries.length);
    let todo = queries.map((q, i) => {
      const key = this.key(q);
      const distinct = q.distinct
        ?.map((l) => `${l.name}=${l.own === undefined ? '' : encodeId(l.own)}${l.novelty ? '@' : ''}`)
        .join(' ');
      return {
        i,
        key,
        queried: q.bounds,
        bounds: q.bounds,
        cutoff: NaN,
        tiles: this.isTiled(key),
        distinct: distinct ?? '',
      };
    });
    for (let attempt = 0; todo.length > 0; attempt++) {
      if (attempt === MAX_READ_ATTEMPTS)
        throw new Error('the horizon of an entity kept moving during a read');
      const asked = todo.filter((x) => x.bounds.length > 1 && x.bounds[x.bounds.length - 1]! > x.bounds[0]!);
      for (const x of todo) if (!asked.includes(x)) out[x.i] = NO_RECORDS;
      const replies = await this.exec(
        asked.map((x) => (x.tiles ? { key: x.key, bounds: x.bounds, distinct: x.distinct } : { key: x.key })),
      );
      todo = [];
      asked.forEach((x, k) => {
        const from = x.bounds[0]!;
        const to = x.bounds[x.bounds.length - 1]!;
        if (!x.tiles) {
          // The log, whole (small), or "@": the entity is kept as tiles.
          const log = replies[k] as string;
          if (log !== '@') {
            out[x.i] = parseLog(log, from, to, this.horizonMs);
            return;
          }
          this.remember(x.key);
          todo.push({ ...x, tiles: true });
          return;
        }
        const lines = (replies[k] as string).split('\n');
        if (lines[1] === '-1') {
          // Kept as a log again (expired and written anew).
          this.tiled.delete(x.key);
          out[x.i] = parseLog(lines.slice(2).join('\n'), from, to, this.horizonMs);
          return;
        }
        const cutoff = cutoffOf(lines[0] || null, this.horizonMs);
        const cuts = cutoff >= x.queried[0]!;
        if (cuts ? cutoff === x.cutoff : Number.isNaN(x.cutoff)) out[x.i] = parseTiles(lines, x.bounds);
        else
          todo.push({
            ...x,
            cutoff: cuts ? cutoff : NaN,
            bounds: cuts ? clipBounds(x.queried, cutoff) : x.queried,
          });
      });
    }
    return out;
  }

  /** Whether the entity was seen kept as tiles; a hit keeps it among the remembered (least recently read last). */
  private isTiled(key: string): boolean {
    if (!this.tiled.has(key)) return false;
    this.tiled.set(key, true);
    return true;
  }

  private remember(key: string): void {
    this.tiled.set(key, true);
  }

  /** Every record in (from, to]: one script call per entity that returns both its keys' values (lua/dump.lua). */
  read(queries: readonly WindowQuery[]): Promise<RecordColumns[]> {
    return this.exec(queries.map((q) => ({ key: this.key(q), dump: true }))).then((replies) =>
      queries.map((q, i) => {
        const [log, tiles] = replies[i] as [string[], string[]];
        if (!log.some((v) => v.charCodeAt(0) === AT))
          return parseLog(log.join('\n'), q.from, q.to, this.horizonMs);
        const cutoff = Math.max(q.from, cutoffOf(log.find((v) => v.charCodeAt(0) === AT)!, this.horizonMs));
        return columnsOf(
          tiles.flatMap((v) => (v.charCodeAt(0) === EQUALS ? [parseRecord(v)] : [])),
          cutoff,
          q.to,
        );
      }),
    );
  }

  /**
   * Read commands; on a single node, the commands of one event-loop turn share a pipeline, and its log reads
   * share script calls (LOGS).
   */
  private exec(commands: readonly Command[]): Promise<unknown[]> {
    return Promise.all(
      commands.map((c) =>
        !c.bounds && !c.dump
          ? this.pipeline.item(LOGS, c.key)
          : this.pipeline.exec([(client) => send(client as Client, c)]).then((replies) => replies[0]),
      ),
    );
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    await this.client.quit();
  }
}

const TILES = ':tiles';

/** One read: the log script (LOGS), the read script with `bounds`, or the dump script. */
interface Command {
  readonly key: string;
  readonly bounds?: readonly number[];
  /** The read script's distinct counts wanted (lua/read.lua ARGV[2]). */
  readonly distinct?: string;
  readonly dump?: boolean;
}

/**
 * Entity logs per log.lua call: a turn's reads in one call instead of one each (the call's dispatch cost the
 * client and the shared Redis more than reading a small log), few enough that a call of logs at their longest
 * (LOG_FIELDS values each) holds Redis well under a millisecond.
 */
const LOGS_PER_CALL = 32;

const LOGS: Coalesced<Redis | Cluster, string, string> = {
  max: LOGS_PER_CALL,
  issue: (c, keys) => (c as Client).fsLog(keys.length, ...keys),
  split: (reply) => reply as string[],
};

function send(c: Client, command: Command): Promise<unknown> {
  const tiles = `${command.key}${TILES}`;
  if (command.bounds)
    return c.fsRead(command.key, tiles, LEVELS_ARG, command.distinct ?? '', ...command.bounds);
  return c.fsDump(command.key, tiles);
}

/** A horizon that moves at every read would be a broken clock; a read gives up after this many attempts. */
const MAX_READ_ATTEMPTS = 4;

const LEVELS_ARG = TILE_LEVELS.map((l) => `${l.name} ${l.ms}`).join(' ');
const LEVEL_MS = new Map(TILE_LEVELS.map((l) => [l.name, l.ms]));

/**
 * The lines of a read script reply on tiles (lua/read.lua) → the summary: the aggregates of whole tiles, the
 * distinct counts if the script gave them, and the records of the tiles read (whole or split) as raw records,
 * those outside (bounds[0], bounds[last]] dropped.
 */
function parseTiles(lines: readonly string[], bounds: readonly number[]): WindowSummary {
  const from = bounds[0]!;
  const to = bounds[bounds.length - 1]!;
  const n = Number(lines[1]);
  const tiles: ReadTile[] = [];
  for (let i = 2; i < 2 + n; i++) {
    // "<level> <k> <count> <frauds> <dt> <sum part>…"
    const v = lines[i]!;
    const a = v.indexOf(' ');
    const b = v.indexOf(' ', a + 1);
    const c = v.indexOf(' ', b + 1);
    const d = v.indexOf(' ', c + 1);
    let e = v.indexOf(' ', d + 1);
    if (e < 0) e = v.length;
    const ms = LEVEL_MS.get(v.slice(0, a))!;
    const lo = integer(v, a + 1, b) * ms;
    const bar = v.indexOf(' |', d);
    const end = bar < 0 ? v.length : bar;
    if (e > end) e = end;
    tiles.push({
      lo,
      hi: lo + ms,
      count: integer(v, b + 1, c),
      frauds: integer(v, c + 1, d),
      maxT: lo + integer(v, d + 1, e),
      parts: e < end ? numbersIn(v, e + 1, end) : [],
      links: bar < 0 ? undefined : parseLinkSet(v.slice(bar + 2)),
    });
  }
  let i = 2 + n;
  let distinct:
    | { bounds: readonly number[]; after: Record<string, number[]>; ownNewest: Record<string, number> }
    | undefined;
  for (; i < lines.length && lines[i]!.charCodeAt(0) === TILDE; i++) {
    // "~<name> <own id's newest time or -> <count after each bound>…"
    const [name, newest, ...after] = lines[i]!.slice(1).split(' ');
    distinct ??= { bounds, after: {}, ownNewest: {} };
    distinct.after[name!] = after.map(Number);
    distinct.ownNewest[name!] = newest === '-' ? Number.NEGATIVE_INFINITY : Number(newest);
  }
  const rows: Row[] = [];
  for (; i < lines.length; i++) rows.push(parseRecord(lines[i]!));
  const records = columnsOf(rows, from, to);
  const withCounts = distinct ? { ...records, distinct } : records;
  if (tiles.length === 0) return withCounts;
  const out = new TileColumnsBuilder();
  for (const t of tiles.sort((x, y) => x.lo - y.lo))
    out.push(t.lo, t.hi, t.count, t.frauds, t.maxT, t.parts, 0, t.parts.length, t.links);
  return { ...withCounts, tiles: out.build() };
}

/** Tile aggregates as read, before they are put in time order. */
interface ReadTile {
  readonly lo: number;
  readonly hi: number;
  readonly count: number;
  readonly frauds: number;
  readonly maxT: number;
  readonly parts: readonly number[];
  readonly links: TileLinks | undefined;
}

/** The entity's cutoff from its metadata field: what lies at or before it is past the horizon. */
function cutoffOf(meta: string | null, horizonMs: number): number {
  if (!meta) return Number.NEGATIVE_INFINITY;
  const a = meta.indexOf(' ');
  return integer(meta, a + 1, meta.indexOf(' ', a + 1)) - horizonMs;
}

interface Row {
  readonly id: string;
  readonly t: number;
  readonly seq: number;
  readonly amount: number;
  fraud: number;
  readonly links?: Links;
}

/** A record of tiles, "=<t> <seq> <amount> <0|1> <id>[ <links>]" (see lua/apply.lua). */
function parseRecord(v: string): Row {
  const a = v.indexOf(' ', 1);
  const b = v.indexOf(' ', a + 1);
  const c = v.indexOf(' ', b + 1);
  const d = v.indexOf(' ', c + 3);
  const row: Row = {
    id: d < 0 ? v.slice(c + 3) : v.slice(c + 3, d),
    t: integer(v, 1, a),
    seq: integer(v, a + 1, b),
    amount: decimal(v, b + 1, c),
    fraud: v.charCodeAt(c + 1) === ONE ? 1 : 0,
  };
  return d < 0 ? row : { ...row, links: parseLinks(v.slice(d + 1)) };
}

/**
 * Links as records carry them (lua/apply.lua): " <name>=<id>…", ids with `%`, `@` and whitespace percent-encoded so
 * that a record's fields and a link set's entries (`<name>=<id>@<t>`) stay apart.
 */
function encodeLinks(links: Links): string {
  let out = '';
  for (const name in links) out += ` ${name}=${encodeId(links[name]!)}`;
  return out;
}

function encodeId(id: string): string {
  return id.replace(/[%@\s]/gu, encodeURIComponent);
}

function decodeId(s: string): string {
  return s.includes('%') ? decodeURIComponent(s) : s;
}

/** "<name>=<id> …" → links. */
function parseLinks(s: string): Links {
  const out: Record<string, string> = {};
  for (const link of s.split(' ')) {
    const eq = link.indexOf('=');
    if (eq > 0) out[link.slice(0, eq)] = decodeId(link.slice(eq + 1));
  }
  return out;
}

/** A tile's link set, " <name>=<id>@<t>…" → other entity → id → first time. */
function parseLinkSet(s: string): TileLinks {
  const out = new Map<string, Map<string, number>>();
  for (const entry of s.split(' ')) {
    const eq = entry.indexOf('=');
    const at = entry.lastIndexOf('@');
    if (eq <= 0 || at < eq) continue;
    const name = entry.slice(0, eq);
    let ids = out.get(name);
    if (!ids) {
      ids = new Map();
      out.set(name, ids);
    }
    ids.set(decodeId(entry.slice(eq + 1, at)), Number(entry.slice(at + 1)));
  }
  return out;
}

/** The rows with from < t ≤ to, sorted by (t, seq), as columns. */
function columnsOf(all: Row[], from: number, to: number): RecordColumns {
  const rows = all.filter((r) => r.t > from && r.t <= to);
  const n = rows.length;
  if (n === 0) return NO_RECORDS;
  rows.sort((x, y) => x.t - y.t || x.seq - y.seq);
  const ids: string[] = new Array(n);
  const { t, seq, amount, fraud } = columnArrays(n);
  let links: (Links | undefined)[] | undefined;
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    ids[i] = r.id;
    t[i] = r.t;
    seq[i] = r.seq;
    amount[i] = r.amount;
    fraud[i] = r.fraud;
    if (r.links) {
      links ??= new Array<Links | undefined>(n);
      links[i] = r.links;
    }
  }
  return links
    ? { start: 0, end: n, ids, t, seq, amount, fraud, links }
    : { start: 0, end: n, ids, t, seq, amount, fraud };
}

/**
 * The values of an entity's log (see lua/apply.lua), one per line of `text` → its transactions with
 * from < t ≤ to, sorted by (t, seq), labels joined. Transactions past the horizon may still be there
 * (trimming waits for upkeep); they are left out here, so a read sees exactly what an eagerly trimmed store
 * holds.
 *
 * Parsed straight into columns: this runs for every entity of every score, and an object per record was the
 * largest share of what a score allocated. A log written in time order (the usual case: a small hash keeps
 * insertion order) is used where it was parsed, the horizon's cutoff only moving its start; one written newest
 * first is turned around; any other order is sorted.
 */
function parseLog(text: string, from: number, to: number, horizonMs: number): RecordColumns {
  let cutoff = Number.NEGATIVE_INFINITY;
  let fraudIds: Set<string> | undefined;
  let size = 1;
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) size++;
  const ids: string[] = new Array(size);
  const { t, seq, amount, fraud } = columnArrays(size);
  let links: (Links | undefined)[] | undefined;
  let n = 0;
  let ordered = true;
  let reversed = true;
  for (let v = 0; v < text.length; ) {
    let end = text.indexOf('\n', v);
    if (end < 0) end = text.length;
    const a = text.indexOf(' ', v);
    const b = text.indexOf(' ', a + 1);
    const kind = text.charCodeAt(v);
    if (kind === HASH) cutoff = integer(text, a + 1, b) - horizonMs;
    else if (kind === BANG) {
      if (text.charCodeAt(a + 1) === ONE) {
        fraudIds ??= new Set();
        fraudIds.add(text.slice(b + 1, end));
      }
    } else if (a > v && a < end) {
      const time = integer(text, v, a);
      if (time > from && time <= to) {
        // "<t> <seq> <amount> <id>[ <links>]"
        const c = text.indexOf(' ', b + 1);
        let d = text.indexOf(' ', c + 1);
        if (d > end) d = -1;
        const s = integer(text, a + 1, b);
        if (n > 0) {
          if (time < t[n - 1]! || (time === t[n - 1]! && s < seq[n - 1]!)) ordered = false;
          else reversed = false;
        }
        t[n] = time;
        seq[n] = s;
        amount[n] = decimal(text, b + 1, c);
        ids[n] = text.slice(c + 1, d < 0 ? end : d);
        if (d >= 0) {
          links ??= new Array<Links | undefined>(size);
          links[n] = parseLinks(text.slice(d + 1, end));
        }
        n++;
      }
    }
    v = end + 1;
  }
  if (fraudIds) for (let i = 0; i < n; i++) if (fraudIds.has(ids[i]!)) fraud[i] = 1;
  if (!ordered && reversed) {
    // Written newest first: turned around in place rather than sorted.
    for (const column of [t, seq, amount]) column.subarray(0, n).reverse();
    fraud.subarray(0, n).reverse();
    ids.length = n;
    ids.reverse();
    if (links) {
      links.length = n;
      links.reverse();
    }
    ordered = true;
  }
  if (ordered) {
    let start = 0;
    while (start < n && t[start]! <= cutoff) start++;
    if (start === n) return NO_RECORDS;
    return links
      ? { start, end: n, ids, t, seq, amount, fraud, links }
      : { start, end: n, ids, t, seq, amount, fraud };
  }
  const order: number[] = [];
  for (let i = 0; i < n; i++) if (t[i]! > cutoff) order.push(i);
  if (order.length === 0) return NO_RECORDS;
  order.sort((x, y) => t[x]! - t[y]! || seq[x]! - seq[y]!);
  const m = order.length;
  const out = { start: 0, end: m, ids: new Array<string>(m), ...columnArrays(m) };
  const outLinks = links ? new Array<Links | undefined>(m) : undefined;
  for (let k = 0; k < m; k++) {
    const i = order[k]!;
    out.ids[k] = ids[i]!;
    out.t[k] = t[i]!;
    out.seq[k] = seq[i]!;
    out.amount[k] = amount[i]!;
    out.fraud[k] = fraud[i]!;
    if (outLinks) outLinks[k] = links![i];
  }
  return outLinks ? { ...out, links: outLinks } : out;
}

const HASH = '#'.charCodeAt(0);
const AT = '@'.charCodeAt(0);
const BANG = '!'.charCodeAt(0);
const EQUALS = '='.charCodeAt(0);
const ONE = '1'.charCodeAt(0);
const TILDE = '~'.charCodeAt(0);

/**
 * The numeric columns of n records over one buffer: a typed array of a few hundred bytes lives outside the heap,
 * and allocating (and later freeing) one backing store instead of four was a measurable share of a read.
 */
function columnArrays(n: number): Pick<RecordColumns, 't' | 'seq' | 'amount' | 'fraud'> {
  const buffer = new ArrayBuffer(n * 25);
  return {
    t: new Float64Array(buffer, 0, n),
    seq: new Float64Array(buffer, n * 8, n),
    amount: new Float64Array(buffer, n * 16, n),
    fraud: new Uint8Array(buffer, n * 24, n),
  };
}

function slotOf(key: string): number {
  return calculateSlot(key);
}

/** Indexes of `xs` grouped by key, each group in the original order. */
function groupBy<T>(xs: readonly T[], key: (x: T) => number): number[][] {
  const groups = new Map<number, number[]>();
  xs.forEach((x, i) => {
    const k = key(x);
    const g = groups.get(k);
    if (g) g.push(i);
    else groups.set(k, [i]);
  });
  return [...groups.values()];
}

function chunks<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}
