/**
 * `fraudscore serve` as an operator runs it: its log lines reach stdout while it runs, not only at exit (the
 * destination buffers 4 KiB), and a second signal while it drains does not cut its logs short.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/net.js';
import { waitFor } from '../../helpers/wait.js';

describe('fraudscore serve, the process', () => {
  it('writes its log lines while it runs, and drains whole through a second signal', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        PORT: String(port),
        MODEL_DIR: 'test/fixtures/models',
        LOG_LEVEL: 'info',
        REDIS_URL: '',
        REDIS_CLUSTER_NODES: '',
        KAFKA_BROKERS: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // A few lines, far less than the 4 KiB buffer: they arrive while the process keeps running.
      await waitFor(
        () => /Server listening/.test(out),
        30_000,
        'a log line on stdout',
        () => out,
      );
      expect(child.exitCode).toBeNull();
      child.kill('SIGTERM');
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
      const lines = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string });
      expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['draining', 'stopped']));
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 60_000);
});
