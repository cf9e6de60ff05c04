/**
 * `npm run bench`: every scenario in turn, each against its own baseline in the same run. Starts Redis and
 * Kafka with scripts/services.sh (left running), builds, and writes each scenario's JSON to bench/results/.
 *
 *   npm run bench [-- --only http,ingest,backfill,inference,batch,tracing,hot-entity,hot-device,trim,burst,decision-log,traffic] [--data ../shared/data/fraud-handbook]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    only: {
      type: 'string',
      default:
        'inference,backfill,ingest,http,batch,tracing,hot-entity,hot-device,trim,burst,decision-log,traffic',
    },
    data: { type: 'string', default: '../shared/data/fraud-handbook' },
  },
});
const only = new Set(values.only.split(','));
mkdirSync('bench/results', { recursive: true });
execFileSync('bash', ['scripts/services.sh', 'up', 'all'], { stdio: 'inherit' });
// The traffic scenario also runs on the 3-node Redis Cluster.
if (only.has('traffic'))
  execFileSync('bash', ['scripts/services.sh', 'up', 'redis-cluster'], { stdio: 'inherit' });
for (const line of readFileSync('.services/env', 'utf8').split('\n')) {
  const m = /^([A-Z_]+)=(.*)$/.exec(line);
  if (m) process.env[m[1]!] = m[2]!;
}
execFileSync('npm', ['run', 'build'], { stdio: 'inherit' });
console.error(
  `machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
);

const scenarios: [string, string[]][] = [
  ['inference', ['bench/inference.bench.ts']],
  ['backfill', ['bench/backfill.ts', '--data', values.data]],
  ['ingest', ['bench/ingest.ts']],
  ['http', ['bench/http.ts']],
  ['batch', ['bench/batch.ts']],
  ['tracing', ['bench/tracing.ts']],
  ['hot-entity', ['bench/hot-entity.ts']],
  ['hot-device', ['bench/hot-device.ts']],
  ['trim', ['bench/trim.ts']],
  ['burst', ['bench/burst.ts']],
  ['decision-log', ['bench/decision-log.ts']],
  ['traffic', ['bench/traffic.ts']],
];
for (const [name, args] of scenarios) {
  if (!only.has(name)) continue;
  if (name === 'backfill' && !existsSync(values.data)) {
    console.error(`backfill: no data at ${values.data}, not run`);
    continue;
  }
  console.error(`\n== ${name} ==`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  writeFileSync(`bench/results/${name}.json`, r.stdout);
  process.stdout.write(r.stdout);
  if (r.status !== 0) process.exitCode = 1;
}
