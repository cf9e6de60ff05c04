/**
 * `fraudscore backfill` over the handbook files: wall time and peak memory, next to a baseline that only reads
 * and parses the same files (the floor any backfill pays), in the same run.
 *
 *   npm run build && npx tsx bench/backfill.ts [--data ../shared/data/fraud-handbook] [--feature-set transaction_v1]
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/data/fraud-handbook' },
    'feature-set': { type: 'string', default: 'transaction_v1' },
    repeats: { type: 'string', default: '1' },
  },
});
const run = promisify(execFile);
if (!existsSync(values.data)) {
  console.error(`no handbook data at ${values.data}; pass --data`);
  process.exit(2);
}
const files = readdirSync(values.data)
  .filter((f) => /^transactions-2018-\d\d\.csv\.gz$/.test(f))
  .sort()
  .map((f) => join(values.data, f));

async function timed(args: string[]): Promise<{ secs: number; rssMiB: number; out: string }> {
  const started = performance.now();
  const { stderr } = await run('/usr/bin/time', ['-f', 'maxrss_kb=%M', process.execPath, ...args], {
    maxBuffer: 1 << 26,
  });
  const secs = (performance.now() - started) / 1000;
  const rss = Number(/maxrss_kb=(\d+)/.exec(stderr)?.[1] ?? Number.NaN) / 1024;
  return { secs, rssMiB: Math.round(rss), out: stderr.trim().split('\n').at(-2) ?? '' };
}

const rows = [];
for (let k = 0; k < Number(values.repeats); k++) {
  const parse = await timed(['--import', 'tsx', 'bench/parse-only.ts', ...files]);
  const full = await timed([
    'dist/src/cli/main.js',
    'backfill',
    '--feature-set',
    values['feature-set'],
    '-o',
    '/tmp/fraudscore-bench-backfill.csv',
    '-i',
    ...files,
  ]);
  rows.push({
    parse_only_s: +parse.secs.toFixed(1),
    backfill_s: +full.secs.toFixed(1),
    backfill_peak_rss_mib: full.rssMiB,
    detail: full.out,
  });
  console.error(
    `backfill ${full.secs.toFixed(1)}s (peak ${full.rssMiB} MiB); read+parse only ${parse.secs.toFixed(1)}s`,
  );
}
console.log(
  JSON.stringify(
    { scenario: 'backfill', feature_set: values['feature-set'], files: files.length, runs: rows },
    null,
    2,
  ),
);
