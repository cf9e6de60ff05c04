import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../src/adapters/fs/feature-set-files.js';
import { fileRows } from '../../src/adapters/fs/handbook-csv.js';
import { backfillToCsv } from '../../src/wiring/jobs.js';
import { v3 } from '../helpers/device-sets.js';
import { trainingModule } from '../helpers/python.js';
import { tempDirs } from '../helpers/temp-dir.js';

const sets = loadFeatureSets('features');
sets.set(v3.id, v3);
const V3_JSON = resolve('features/transaction_v3.json');
const HANDBOOK_MONTH = resolve('..', 'shared', 'data', 'fraud-handbook', 'transactions-2018-04.csv.gz');

/** Every feature of every transaction within 1e-9 relative; returns the number of values compared. */
function compare(oracleCsv: string, engineCsv: string, names: readonly string[]): number {
  const parse = (path: string) => {
    const [header, ...lines] = readFileSync(path, 'utf8').trim().split('\n');
    const cols = header!.split(',');
    return { cols, rows: lines.map((l) => l.split(',')) };
  };
  const a = parse(oracleCsv);
  const b = parse(engineCsv);
  expect(b.rows.length).toBe(a.rows.length);
  const ia = names.map((n) => a.cols.indexOf(n));
  const ib = names.map((n) => b.cols.indexOf(n));
  expect(ia).not.toContain(-1);
  expect(ib).not.toContain(-1);
  const mismatches: string[] = [];
  a.rows.forEach((ra, r) => {
    const rb = b.rows[r]!;
    if (ra[0] !== rb[0]) mismatches.push(`row ${r}: transaction ${ra[0]} vs ${rb[0]}`);
    names.forEach((n, k) => {
      const x = Number(ra[ia[k]!]);
      const y = Number(rb[ib[k]!]);
      if (!(Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(x))))
        mismatches.push(`${ra[0]} ${n}: oracle ${x}, engine ${y}`);
    });
  });
  expect(mismatches.slice(0, 10)).toEqual([]);
  return a.rows.length * names.length;
}

async function parity(input: string, setId: string, dir: string): Promise<number> {
  const set = sets.get(setId)!;
  const oracle = join(dir, `${setId}-oracle.csv`);
  const engine = join(dir, `${setId}-engine.csv`);
  const spec = setId === v3.id ? V3_JSON : setId;
  await trainingModule('oracle', ['--input', input, '--output', oracle, '--feature-set', spec]);
  await backfillToCsv(fileRows([input]), { set, output: engine });
  return compare(
    oracle,
    engine,
    set.names.filter((n) => n !== 'TX_AMOUNT'),
  );
}

describe('the TypeScript engine equals the independent pandas oracle', () => {
  let dir: string;
  let generated: string;
  let withDevices: string;
  const tmp = tempDirs();
  beforeAll(async () => {
    dir = await tmp('parity-');
    generated = join(dir, 'generated.csv');
    await trainingModule('generate', [
      '--days',
      '50',
      '--customers',
      '150',
      '--terminals',
      '300',
      '--seed',
      '5',
      '--output',
      generated,
    ]);
    // The same customers with devices and networks, and the device scenarios (takeover, card testing, rings).
    withDevices = join(dir, 'generated-devices.csv');
    await trainingModule('generate', [
      ...['--days', '50', '--customers', '150', '--terminals', '300', '--seed', '5', '--devices'],
      ...['--output', withDevices],
    ]);
  });

  it.each(['transaction_v1', 'transaction_v2', 'transaction_v3'])(
    'on generated data with devices, networks and every fraud scenario, the device ones included (%s)',
    async (setId) => {
      const csv = readFileSync(withDevices, 'utf8');
      for (const scenario of [1, 2, 3, 4, 5, 6]) expect(csv).toMatch(new RegExp(`,1,${scenario},`));
      expect(await parity(withDevices, setId, dir)).toBeGreaterThan(50_000);
    },
  );

  it.each(['transaction_v1', 'transaction_v2'])(
    'on generated data with every fraud scenario (%s)',
    async (setId) => {
      expect(await parity(generated, setId, dir)).toBeGreaterThan(50_000);
    },
  );

  // The handbook data is not part of the project; where it sits beside the checkout (as in CI), it is used too.
  if (existsSync(HANDBOOK_MONTH))
    it.each(['transaction_v1', 'transaction_v2'])('on one month of the handbook data (%s)', async (setId) => {
      expect(await parity(HANDBOOK_MONTH, setId, dir)).toBeGreaterThan(288_000 * 14);
    });
});
