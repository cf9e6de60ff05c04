import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../src/adapters/fs/feature-set-files.js';
import { fileRows } from '../../src/adapters/fs/handbook-csv.js';
import { backfillToCsv, backfillWithSql, type SqlEngine } from '../../src/wiring/jobs.js';
import { trainingModule } from '../helpers/python.js';
import { tempDirs } from '../helpers/temp-dir.js';

const sets = new Map([...loadFeatureSets('features'), ...loadFeatureSets('test/fixtures/features-edge')]);
const HANDBOOK = resolve('..', 'shared', 'data', 'fraud-handbook');
const MONTHS = ['04', '05', '06', '07', '08', '09'].map((m) =>
  join(HANDBOOK, `transactions-2018-${m}.csv.gz`),
);

/** Transaction ids in file order. */
function ids(csv: string): string[] {
  return readFileSync(csv, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.slice(0, l.indexOf(',')));
}

/** Node backfill of `data` (a name for the files) against `fraudscore backfill --engine <engine>`: same columns, rows and order, values within 1e-9. */
async function parity(
  data: string,
  inputs: string[],
  setId: string,
  engine: SqlEngine,
  dir: string,
): Promise<void> {
  const set = sets.get(setId)!;
  const node = join(dir, `${data}-${setId}-node.csv`);
  const sql = join(dir, `${data}-${setId}-${engine}.csv`);
  if (!existsSync(node)) await backfillToCsv(fileRows(inputs), { set, output: node });
  await backfillWithSql(engine, inputs, { set, output: sql });
  // compare.py: same header, every value |a - b| <= 1e-9 + 1e-9 |b|; exits 1 on any difference.
  expect(await trainingModule('compare', [sql, node])).toContain('agree');
  expect(ids(sql)).toEqual(ids(node));
}

describe('the SQL engines equal the Node backfill (issue 22)', () => {
  let dir: string;
  let generated: string;
  let labeled: string;
  const tmp = tempDirs();
  beforeAll(async () => {
    dir = await tmp('sql-parity-');
    generated = join(dir, 'generated.csv');
    labeled = join(dir, 'labeled.csv');
    // Every fraud scenario; 1 % of a customer's transactions share the second of the one before (ties).
    const data = ['--days', '50', '--customers', '150', '--terminals', '300', '--seed', '5'];
    await trainingModule('generate', [...data, '--output', generated]);
    // The same with LABELED_AT: labels known before, at, or seconds to weeks after their transaction, exactly
    // the windows' and delays' lengths later, exactly at a later transaction of the same terminal or customer.
    await trainingModule('generate', [...data, '--labeled-at', '--output', labeled]);
  });

  it.each([
    ['transaction_v1', 'duckdb'],
    ['transaction_v2', 'duckdb'],
    ['edge_v1', 'duckdb'],
    // One Spark run here (a JVM start each); training/tests/test_sql_backfill.py holds Spark to DuckDB on the rest.
    ['transaction_v2', 'spark'],
  ] as const)(
    'on generated data with every fraud scenario and same-time ties (%s, %s)',
    async (setId, engine) => {
      await parity('generated', [generated], setId, engine, dir);
    },
  );

  it.each([
    ['transaction_v1', 'duckdb'],
    ['transaction_v2', 'duckdb'],
    ['edge_v1', 'duckdb'],
    ['edge_v1', 'spark'],
  ] as const)(
    'on generated data whose fraud labels arrive later (LABELED_AT), applied when they arrive (%s, %s)',
    async (setId, engine) => {
      await parity('labeled', [labeled], setId, engine, dir);
    },
  );

  // The handbook data is not part of the project; where it sits beside the checkout (as in CI), it is used too.
  if (MONTHS.every((m) => existsSync(m)))
    it('on the six handbook months, DuckDB (transaction_v2)', { timeout: 900_000 }, async () => {
      await parity('handbook', MONTHS, 'transaction_v2', 'duckdb', dir);
    });
});
