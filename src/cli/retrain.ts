import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { BACKFILL_ENGINES, retrainFromFiles, retrainFromKafka, stderrLogger } from '../wiring/jobs.js';
import { estimateRows, progress } from './progress.js';
import { UsageError } from './usage.js';

export const help = `fraudscore retrain --input <file.csv[.gz]>... [options]
fraudscore retrain --from-kafka [options]

Builds the next version of a model from the event history and writes it to MODEL_DIR/<name>/<N+1>:
  0. with --from-kafka: the transactions and labels topics, from the earliest retained offset up to the high
     watermarks at the start, exported into the work dir as one handbook-format file (each transaction with
     its last label; messages the worker would refuse are skipped and counted). It is held in memory: export
     a large history to files first and use --input;
  1. backfill: the history (handbook-format files, in time order) through the service's feature engine;
  2. train: the Python trainer on every row before the evaluation period (the last --test-days days);
  3. gate: the candidate and the champion scored on that period with the handbook protocol, paired bootstrap
     intervals of the differences (AUC ROC, AP, CP@100), verdict eligible or rejected by the gate rules, and
     the model card (manifest "card" and MODEL_CARD.md);
  4. publish: the version folder, built in a staging folder next to it, renamed into place (manifest last).
A failure leaves no version folder. A rejected version is kept for inspection; the service refuses to
activate or canary it without ?override=true&reason=… (audited). Exit code 0 when eligible, 3 when rejected.

  --input, -i <file>       input CSV or CSV.gz (repeatable; or several paths after the options)
  --from-kafka             read the history from KAFKA_TOPIC_TRANSACTIONS and KAFKA_TOPIC_LABELS on
                           KAFKA_BROKERS instead of files (not with --input)
  --until <YYYY-MM-DD>     last day of history to use (default: all of it)
  --name <model>           model name (default MODEL_NAME or fraudscore)
  --dir <dir>              model directory (default MODEL_DIR or models)
  --feature-dir <dir>      feature definitions (default FEATURE_DIR or features)
  --feature-set <id>       feature set of the new version (default: the champion's, else transaction_v2)
  --engine <name>          backfill engine: ${BACKFILL_ENGINES.join(', ')} (default node); the SQL engines
                           give the node engine's rows, fraud labels applied at their LABELED_AT included
  --champion <version>     compare with this version (default: the control plane's active version when
                           REDIS_URL / REDIS_CLUSTER_NODES is set, else the newest eligible version on disk)
  --test-days <n>          evaluation period: the last n days of history (default 7)
  --gap-days <n>           days between the training rows and the evaluation period (default 0; 7 = the
                           handbook's train/test delay)
  --gate <rule>            gate rule, repeatable (default: average_precision>=-0.01 and auc_roc>=-0.005):
                           "<metric>>=<x>": the lower bound of the interval of candidate − champion ≥ x;
                           "<metric>.point>=<x>": the difference itself ≥ x. Metrics: auc_roc,
                           average_precision, card_precision_at_100. Also RETRAIN_GATE (comma-separated).
  --confidence <p>         interval level (default 0.95: two-sided percentile interval)
  --resamples <n>          bootstrap resamples over cards (default 1000)
  --bootstrap-seed <n>     bootstrap seed (default 7)
  --seed <n>               training seed (default 7)
  --smoke                  trainer: small models (CI, generated data)
  --max-trees <n>          trainer: LightGBM trees
  --debug-shuffle-labels   trainer, DEBUG: permute the training labels (a useless model; the gate rejects it)
  --trigger <kind>         who or what started the run, for the card (default manual; e.g. schedule)
  --note <text>            a note for the card
  --work-dir <dir>         scratch folder for the training sets (default: a temp folder, removed)
  --json                   print the result as JSON on stdout

Python: FRAUDSCORE_PYTHON (default training/.venv/bin/python, see scripts/python-env.sh); the
training package from FRAUDSCORE_TRAINING_DIR (default training).`;

/** KAFKA_BROKERS and the topic names, as the worker reads them. */
function kafkaSettings() {
  const config = loadConfig(process.env);
  if (!config.KAFKA_BROKERS?.length) throw new UsageError('--from-kafka needs KAFKA_BROKERS', help);
  return {
    brokers: config.KAFKA_BROKERS,
    topics: { transactions: config.KAFKA_TOPIC_TRANSACTIONS, labels: config.KAFKA_TOPIC_LABELS },
  };
}

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      input: { type: 'string', short: 'i', multiple: true },
      'from-kafka': { type: 'boolean', default: false },
      until: { type: 'string' },
      name: { type: 'string', default: process.env.MODEL_NAME || 'fraudscore' },
      dir: { type: 'string', default: process.env.MODEL_DIR || 'models' },
      'feature-dir': { type: 'string', default: process.env.FEATURE_DIR || 'features' },
      'feature-set': { type: 'string' },
      engine: { type: 'string', default: 'node' },
      champion: { type: 'string' },
      'test-days': { type: 'string', default: '7' },
      'gap-days': { type: 'string', default: '0' },
      gate: { type: 'string', multiple: true },
      confidence: { type: 'string', default: '0.95' },
      resamples: { type: 'string', default: '1000' },
      'bootstrap-seed': { type: 'string', default: '7' },
      seed: { type: 'string', default: '7' },
      smoke: { type: 'boolean', default: false },
      'max-trees': { type: 'string' },
      'debug-shuffle-labels': { type: 'boolean', default: false },
      trigger: { type: 'string', default: 'manual' },
      note: { type: 'string' },
      'work-dir': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const inputs = [...(values.input ?? []), ...positionals];
  const fromKafka = values['from-kafka'];
  if (fromKafka && inputs.length > 0)
    throw new UsageError('retrain takes --input or --from-kafka, not both', help);
  if (!fromKafka && inputs.length === 0) throw new UsageError('retrain needs --input or --from-kafka', help);
  const kafka = fromKafka ? kafkaSettings() : undefined;
  const int = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!(Number.isInteger(n) && n >= min))
      throw new UsageError(`--${name} must be an integer ≥ ${min}`, help);
    return n;
  };
  if (values.until && !/^\d{4}-\d{2}-\d{2}$/.test(values.until))
    throw new UsageError('--until must be YYYY-MM-DD', help);
  if (!(BACKFILL_ENGINES as readonly string[]).includes(values.engine))
    throw new UsageError(`--engine must be one of ${BACKFILL_ENGINES.join(', ')}`, help);
  const confidence = Number(values.confidence);
  if (!(confidence > 0 && confidence < 1)) throw new UsageError('--confidence must be in (0, 1)', help);
  const rules =
    values.gate ??
    (process.env.RETRAIN_GATE
      ? process.env.RETRAIN_GATE.split(',').map((r) => r.trim())
      : ['average_precision>=-0.01', 'auc_roc>=-0.005']);
  const trainerOptions = [
    ...(values.smoke ? ['--smoke'] : []),
    ...(values['max-trees'] ? ['--max-trees', String(int('max-trees', values['max-trees'], 1))] : []),
    ...(values['debug-shuffle-labels'] ? ['--debug-shuffle-labels'] : []),
  ];
  let by = 'unknown';
  try {
    by = userInfo().username;
  } catch {}

  const logger = stderrLogger(process.env.LOG_LEVEL || 'info');
  const bar = progress(
    'backfill',
    inputs.reduce((n, p) => n + estimateRows(p), 0),
  );
  const started = performance.now();
  const options = {
    ...(values.until ? { until: values.until } : {}),
    name: values.name,
    modelDir: values.dir,
    featureDir: values['feature-dir'],
    ...(values['feature-set'] ? { featureSet: values['feature-set'] } : {}),
    engine: values.engine,
    ...(values.champion ? { champion: values.champion } : {}),
    controlPlane: process.env,
    seed: int('seed', values.seed, 0),
    testDays: int('test-days', values['test-days'], 1),
    gapDays: int('gap-days', values['gap-days'], 0),
    gate: {
      rules,
      resamples: int('resamples', values.resamples, 10),
      seed: int('bootstrap-seed', values['bootstrap-seed'], 0),
      confidence,
    },
    trainerOptions,
    trigger: { kind: values.trigger, by, ...(values.note ? { note: values.note } : {}) },
    python: process.env.FRAUDSCORE_PYTHON || resolve('training/.venv/bin/python'),
    trainingDir: process.env.FRAUDSCORE_TRAINING_DIR || 'training',
    ...(values['work-dir'] ? { workDir: values['work-dir'] } : {}),
    logger,
    // The size of a topic export is unknown until it is read: no bar, the log says how far it is.
    ...(kafka ? {} : { onProgress: (_step: string, done: number) => bar.tick(done) }),
  };
  const result = kafka
    ? await retrainFromKafka({ ...options, ...kafka })
    : await retrainFromFiles({ ...options, inputs });
  logger.flush();
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else
    process.stdout.write(
      `${result.name} v${result.version}: ${result.verdict} (${result.gate.reasons.join('; ')}) → ${result.folder} ` +
        `[${Object.entries(result.timingsSeconds)
          .map(([k, v]) => `${k} ${v}s`)
          .join(', ')}; total ${secs}s]\n`,
    );
  if (result.verdict === 'rejected') process.exitCode = 3;
}
