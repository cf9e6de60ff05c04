import { type ChildProcess, spawn } from 'node:child_process';
import { Socket } from 'node:net';
import type { Redis } from 'ioredis';
import { sleep } from './wait.js';

export async function deleteByPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  for (let guard = 0; guard < 10_000; guard++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
    if (cursor === '0') return;
  }
}

/** A private redis-server on `port` (no persistence, data in `dir`), answering PING before this resolves. */
export async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    if (child.exitCode !== null)
      throw new Error(`redis-server exited with ${child.exitCode} (port ${port} taken?)`);
    if (await ping(port)) return child;
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server on 127.0.0.1:${port} did not answer PING within 10 s`);
}

export function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1_000, () => done(false));
    s.once('error', () => done(false));
    s.once('data', (b: Buffer) => done(b.toString().startsWith('+PONG')));
    s.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
  });
}
