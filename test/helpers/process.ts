import { type ChildProcess, spawn } from 'node:child_process';
import { REPO_ROOT } from './services.js';

/**
 * SIGTERM, then SIGKILL if the child is still there after `graceMs`; resolves once it has exited and its output
 * streams have closed (`close`, not `exit`: the last lines it wrote are in).
 */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/** The environment of `fraudscore serve` in its embedded default (no Redis, no Kafka), listening on 127.0.0.1:port. */
export function embeddedServeEnv(port: number, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    REDIS_URL: '',
    REDIS_CLUSTER_NODES: '',
    KAFKA_BROKERS: '',
    ...extra,
  };
}

/**
 * `fraudscore <command>` as a child process from the sources, keeping the last `keepChunks` chunks of its stdout
 * and stderr (all of them with Infinity, for tests that assert what never appears).
 */
export function spawnCli(
  command: string,
  env: NodeJS.ProcessEnv,
  keepChunks = 200,
): { child: ChildProcess; out: string[] } {
  const out: string[] = [];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', command], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (b: Buffer) => {
    out.push(b.toString());
    if (out.length > keepChunks) out.splice(0, out.length - keepChunks);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, out };
}
