/**
 * `fraudscore serve` as an operator runs it: its log lines reach stdout while it runs, not only at exit (the
 * destination buffers 4 KiB), and a second signal while it drains does not cut its logs short.
 */
import { describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/net.js';
import { embeddedServeEnv, spawnCli } from '../../helpers/process.js';
import { waitFor } from '../../helpers/wait.js';

describe('fraudscore serve, the process', () => {
  it('writes its log lines while it runs, and drains whole through a second signal', async () => {
    const port = await freePort();
    const { child, out: chunks } = spawnCli(
      'serve',
      embeddedServeEnv(port, { MODEL_DIR: 'test/fixtures/models', LOG_LEVEL: 'info' }),
      Number.POSITIVE_INFINITY,
    );
    const output = () => chunks.join('');
    const exit = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    try {
      // A few lines, far less than the 4 KiB buffer: they arrive while the process keeps running.
      await waitFor(() => /Server listening/.test(output()), 30_000, 'a log line on stdout', output);
      expect(child.exitCode).toBeNull();
      child.kill('SIGTERM');
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
      const lines = output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string });
      expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['draining', 'stopped']));
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 60_000);
});
