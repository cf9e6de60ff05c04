import { parseArgs } from 'node:util';
import { DAY_MS } from '../domain/features/time.js';
import { backfillFiles, backfillWithSql, featureSetsFrom } from '../wiring/jobs.js';
import { estimateRows, progress } from './progress.js';
import { UsageError } from './usage.js';

export const help = `fraudscore backfill --input <file.csv[.gz]>... --output <features.csv> [options]

Replays handbook-format transactions (and their fraud labels) in time order through the feature engine
and writes the training set: TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD,
then every feature of the set by name. A fraud label is applied with its transaction, or — when the file has a
LABELED_AT column and the row a value there — when the replay reaches that time, as the worker applies a label
when it arrives; every engine does (TX_FRAUD in the output is the label either way).

  --input, -i <file>     input CSV or CSV.gz (repeatable; or several paths after --input); Parquet too
                         with a SQL engine
  --output, -o <file>    output CSV (.csv.gz: gzip, SQL engines)
  --feature-set <id>     feature set id (default transaction_v1; see features/)
  --feature-dir <dir>    feature definitions (default features)
  --grace-days <n>       retention grace for late events (default 1; node engine)
  --engine <name>        node (default, the reference: this process, every entity's windows in memory),
                         duckdb or spark (the set compiled to SQL, run by the training venv's Python:
                         scripts/python-env.sh; same rows within 1e-9)
  --parquet <dir>        also (or only) a Parquet folder partitioned by day, TX_DAY=YYYY-MM-DD (SQL engines)
  --memory <size>        DuckDB memory limit / local Spark driver memory, e.g. 4GB (SQL engines)`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      input: { type: 'string', short: 'i', multiple: true },
      output: { type: 'string', short: 'o' },
      'feature-set': { type: 'string', default: 'transaction_v1' },
      'feature-dir': { type: 'string', default: 'features' },
      'grace-days': { type: 'string', default: '1' },
      engine: { type: 'string', default: 'node' },
      parquet: { type: 'string' },
      memory: { type: 'string' },
    },
  });
  const inputs = [...(values.input ?? []), ...positionals];
  const engine = values.engine;
  if (engine !== 'node' && engine !== 'duckdb' && engine !== 'spark')
    throw new UsageError(`unknown engine ${engine} (node, duckdb or spark)`, help);
  if (engine === 'node' && (values.parquet || values.memory))
    throw new UsageError('--parquet and --memory need --engine duckdb or spark', help);
  if (inputs.length === 0 || !(values.output || values.parquet))
    throw new UsageError('backfill needs --input and --output (or --parquet)', help);
  const sets = featureSetsFrom(values['feature-dir']);
  const set = sets.get(values['feature-set']);
  if (!set)
    throw new UsageError(
      `unknown feature set ${values['feature-set']} (known: ${[...sets.keys()].join(', ')})`,
      help,
    );
  if (engine !== 'node') {
    await backfillWithSql(engine, inputs, {
      set,
      ...(values.output ? { output: values.output } : {}),
      ...(values.parquet ? { parquet: values.parquet } : {}),
      ...(values.memory ? { memory: values.memory } : {}),
    });
    return;
  }
  if (!values.output) throw new UsageError('the node engine writes --output (CSV)', help);
  const grace = Number(values['grace-days']);
  if (!(grace >= 0)) throw new UsageError('--grace-days must be a number ≥ 0', help);

  const started = performance.now();
  const bar = progress(
    'backfill',
    inputs.reduce((n, p) => n + estimateRows(p), 0),
  );
  const { rows } = await backfillFiles(inputs, {
    set,
    output: values.output,
    graceMs: grace * DAY_MS,
    onProgress: bar.tick,
  });
  bar.done(rows);
  const secs = (performance.now() - started) / 1000;
  process.stderr.write(
    `backfill: ${rows} transactions, ${set.id}, ${secs.toFixed(1)}s (${Math.round(rows / secs)}/s), ` +
      `peak rss ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB → ${values.output}\n`,
  );
}
