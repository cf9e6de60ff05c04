import { type ChildProcess, spawn } from 'node:child_process';
import { REPO_ROOT } from './services.js';

/** SIGTERM, then SIGKILL if the child is still there after `graceMs`; resolves once it has exited. */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/** `fraudscore <command>` as a child process from the sources, keeping the last 200 chunks of its output. */
export function spawnCli(command: string, env: NodeJS.ProcessEnv): { child: ChildProcess; out: string[] } {
  const out: string[] = [];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', command], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (b: Buffer) => {
    out.push(b.toString());
    if (out.length > 200) out.splice(0, out.length - 200);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, out };
}
