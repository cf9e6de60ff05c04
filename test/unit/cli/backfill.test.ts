import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { trainingDir } from '../../../src/adapters/python/training-module.js';
import { run } from '../../../src/cli/backfill.js';
import { UsageError } from '../../../src/cli/usage.js';
import { tempDir } from '../../helpers/temp-dir.js';

describe('fraudscore backfill --engine', () => {
  it.each([
    [['--engine', 'pandas', '-i', 'x.csv', '-o', 'y.csv'], /unknown engine pandas/],
    [['-i', 'x.csv', '--parquet', 'out/'], /need --engine duckdb or spark/],
    [['-i', 'x.csv', '-o', 'y.csv', '--memory', '2GB'], /need --engine duckdb or spark/],
    [['--engine', 'duckdb', '-i', 'x.csv'], /needs --input and --output/],
  ])('refuses %j', async (argv, message) => {
    const err = await run(argv).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(message);
  });

  it('finds the training package upwards from the code, wherever it is built', async () => {
    expect(trainingDir()).toBe(join(process.cwd(), 'training'));
    expect(trainingDir(join(process.cwd(), 'dist', 'src', 'wiring'))).toBe(join(process.cwd(), 'training'));
    expect(trainingDir(await tempDir('nowhere-'))).toBeUndefined();
  });
});
