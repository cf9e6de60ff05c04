/**
 * Connection settings for the real servers the integration tests run against.
 *
 * Settings come from the environment (REDIS_URL, KAFKA_BROKERS, REDIS_CLUSTER_NODES), else from
 * .services/env (written by scripts/services.sh), else the scripts' default loopback ports. Each
 * require*() actively checks the server and throws when it is not there, so a test that calls it in
 * beforeAll FAILS (it never skips) with a message naming the server, its address and how to start it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SERVICES_ENV_FILE = join(REPO_ROOT, '.services', 'env');

const DEFAULTS = {
  REDIS_URL: 'redis://127.0.0.1:6390',
  KAFKA_BROKERS: '127.0.0.1:9192',
  REDIS_CLUSTER_NODES: '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003',
} as const;

type SettingName = keyof typeof DEFAULTS;

const CONNECT_TIMEOUT_MS = 2_000;

export interface HostPort {
  host: string;
  port: number;
}

export interface RedisSettings extends HostPort {
  /** e.g. redis://127.0.0.1:6390 — pass straight to `new Redis(url)`. */
  url: string;
}

export interface KafkaSettings {
  /** e.g. ['127.0.0.1:9192'] — pass to `new Kafka({ brokers })`. */
  brokers: string[];
}

export interface RedisClusterSettings {
  /** Seed nodes — pass to `new Cluster(nodes)`. */
  nodes: HostPort[];
}

/** Parses KEY=VALUE lines (comments and blank lines ignored, optional `export ` and quotes). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!.trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) {
      value = value.slice(1, -1);
    }
    out[m[1]!] = value;
  }
  return out;
}

function setting(name: SettingName): string {
  const fromEnv = process.env[name];
  if (fromEnv !== undefined && fromEnv.trim() !== '') return fromEnv.trim();
  if (existsSync(SERVICES_ENV_FILE)) {
    const fromFile = parseEnvFile(readFileSync(SERVICES_ENV_FILE, 'utf8'))[name];
    if (fromFile !== undefined && fromFile !== '') return fromFile;
  }
  return DEFAULTS[name];
}

export function parseHostPort(address: string, defaultPort: number): HostPort {
  const trimmed = address.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed);
  if (bracketed) {
    return { host: bracketed[1]!, port: bracketed[2] ? Number(bracketed[2]) : defaultPort };
  }
  const idx = trimmed.lastIndexOf(':');
  if (idx === -1) return { host: trimmed, port: defaultPort };
  return { host: trimmed.slice(0, idx), port: Number(trimmed.slice(idx + 1)) };
}

const fmt = ({ host, port }: HostPort): string =>
  host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;

/**
 * Opens a TCP connection and, when `send` is given, writes it and resolves with the first bytes received.
 * Rejects on refusal, timeout, or the peer closing before it answers.
 */
function probe({ host, port }: HostPort, send?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let settled = false;
    let received = '';
    const finish = (err: Error | null, value = ''): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    socket.setTimeout(CONNECT_TIMEOUT_MS, () =>
      finish(new Error(`no answer within ${CONNECT_TIMEOUT_MS} ms`)),
    );
    socket.once('error', (err) => finish(err));
    socket.once('close', () => finish(new Error('connection closed before an answer')));
    socket.once('connect', () => {
      if (send === undefined) finish(null);
      else socket.write(send);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8');
      // RESP replies end with CRLF; a bulk string reply ($n) carries its payload after the first line.
      const firstLine = received.indexOf('\r\n');
      if (firstLine === -1) return;
      if (received.startsWith('$')) {
        const len = Number(received.slice(1, firstLine));
        if (len >= 0 && received.length < firstLine + 2 + len + 2) return;
      }
      finish(null, received);
    });
    socket.connect(port, host);
  });
}

function reason(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** Sends one inline Redis command and returns the raw RESP reply; throws a named error when unreachable. */
async function redisCommand(addr: HostPort, what: string, hint: string, command: string): Promise<string> {
  let reply: string;
  try {
    reply = await probe(addr, `${command}\r\n`);
  } catch (err) {
    throw new Error(`${what} not reachable at ${fmt(addr)} — ${hint} (${reason(err)})`);
  }
  // -NOAUTH still proves a Redis is listening; ioredis will authenticate from the URL.
  if (reply.startsWith('-') && !reply.startsWith('-NOAUTH')) {
    throw new Error(`${what} at ${fmt(addr)} answered ${command} with ${reply.trim()} — ${hint}`);
  }
  return reply;
}

/** The standalone Redis (REDIS_URL). Throws when it does not answer PING. */
export async function requireRedis(): Promise<RedisSettings> {
  const url = setting('REDIS_URL');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`REDIS_URL is not a URL: ${JSON.stringify(url)}`);
  }
  const addr: HostPort = {
    host: parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 6379,
  };
  await redisCommand(addr, 'Redis', 'start it with scripts/services.sh up redis', 'PING');
  return { url, ...addr };
}

/** The Kafka broker(s) (KAFKA_BROKERS, comma-separated). Throws when a broker refuses TCP connections. */
export async function requireKafka(): Promise<KafkaSettings> {
  const brokers = setting('KAFKA_BROKERS')
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
  if (brokers.length === 0) throw new Error('KAFKA_BROKERS is empty');
  await Promise.all(
    brokers.map(async (broker) => {
      const addr = parseHostPort(broker, 9092);
      try {
        await probe(addr);
      } catch (err) {
        throw new Error(
          `Kafka broker not reachable at ${fmt(addr)} — start it with scripts/services.sh up kafka (${reason(err)})`,
        );
      }
    }),
  );
  return { brokers };
}

/** The Redis Cluster (REDIS_CLUSTER_NODES). Throws unless every node answers and cluster_state is ok. */
export async function requireRedisCluster(): Promise<RedisClusterSettings> {
  const nodes = setting('REDIS_CLUSTER_NODES')
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '')
    .map((n) => parseHostPort(n, 6379));
  if (nodes.length === 0) throw new Error('REDIS_CLUSTER_NODES is empty');
  const hint = 'start it with scripts/services.sh up redis-cluster';
  await Promise.all(
    nodes.map(async (node) => {
      const info = await redisCommand(node, 'Redis Cluster node', hint, 'CLUSTER INFO');
      const state = /cluster_state:(\w+)/.exec(info)?.[1];
      if (state !== 'ok') {
        throw new Error(`Redis Cluster node at ${fmt(node)} reports cluster_state:${state ?? '?'} — ${hint}`);
      }
    }),
  );
  return { nodes };
}

let counter = 0;

/**
 * A name no other test file (or earlier run against the same long-lived servers) uses: for Kafka topics
 * and consumer groups, and Redis key prefixes. Only [A-Za-z0-9._-], which Kafka topic names allow.
 */
export function uniqueName(prefix: string): string {
  counter += 1;
  const clean = prefix.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 80) || 'test';
  return `${clean}-${Date.now().toString(36)}-${process.pid}-${counter}-${randomBytes(3).toString('hex')}`;
}
