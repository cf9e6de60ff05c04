import { statSync } from 'node:fs';

/** A one-line progress bar on a TTY; a line per 10 % otherwise, so CI logs stay short. */
export function progress(label: string, total: number, out: NodeJS.WriteStream = process.stderr) {
  const started = performance.now();
  let lastDecile = -1;
  let lastDraw = 0;
  const draw = (done: number, final = false) => {
    const frac = total === 0 ? 1 : done / total;
    const secs = (performance.now() - started) / 1000;
    const rate = secs > 0 ? Math.round(done / secs) : 0;
    if (out.isTTY) {
      const width = 30;
      const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
      out.write(
        `\r${label} ${bar} ${(frac * 100).toFixed(1)}% ${done}/${total} ${rate}/s ${secs.toFixed(1)}s${final ? '\n' : ''}`,
      );
      return;
    }
    const decile = Math.floor(frac * 10);
    if (decile > lastDecile || final) {
      lastDecile = decile;
      out.write(`${label} ${(frac * 100).toFixed(0)}% ${done}/${total} ${rate}/s ${secs.toFixed(1)}s\n`);
    }
  };
  return {
    tick(done: number) {
      const now = performance.now();
      if (now - lastDraw < 100) return;
      lastDraw = now;
      draw(done);
    },
    done(done = total) {
      draw(done, true);
    },
  };
}

/** For progress bars only: about 36 bytes a row in a handbook CSV, 16 in its gzip files. */
export function estimateRows(path: string): number {
  const size = statSync(path).size;
  return Math.round(path.endsWith('.gz') ? size / 16.3 : size / 36);
}
