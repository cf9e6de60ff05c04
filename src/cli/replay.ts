import { parseArgs } from 'node:util';
import { replayFilesToKafka } from '../wiring/jobs.js';
import { estimateRows, progress } from './progress.js';
import { UsageError } from './usage.js';

export const help = `fraudscore replay --input <file.csv[.gz]>... --brokers <host:port,...> [options]

Publishes handbook-format transactions to Kafka as transaction events (key: customer id) and each fraud
as a label event right after its transaction. Topics are created when missing.

  --input, -i <file>         input CSV or CSV.gz, in time order (repeatable)
  --brokers <list>           Kafka bootstrap servers (default: $KAFKA_BROKERS)
  --rate <n>                 transactions per second (default 0: as fast as possible)
  --transactions-topic <t>   default: transactions
  --labels-topic <t>         default: labels
  --partitions <n>           partitions for topics created here (default 4)`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      input: { type: 'string', short: 'i', multiple: true },
      brokers: { type: 'string', default: process.env.KAFKA_BROKERS ?? '' },
      rate: { type: 'string', default: '0' },
      'transactions-topic': { type: 'string', default: 'transactions' },
      'labels-topic': { type: 'string', default: 'labels' },
      partitions: { type: 'string', default: '4' },
    },
  });
  const inputs = [...(values.input ?? []), ...positionals];
  const brokers = values.brokers.split(',').filter(Boolean);
  const rate = Number(values.rate);
  const partitions = Number(values.partitions);
  if (inputs.length === 0 || brokers.length === 0)
    throw new UsageError('replay needs --input and --brokers', help);
  if (!(rate >= 0)) throw new UsageError('--rate must be a number ≥ 0', help);
  if (!Number.isInteger(partitions) || partitions < 1)
    throw new UsageError('--partitions must be a positive integer', help);

  const topics = { transactions: values['transactions-topic'], labels: values['labels-topic'] };
  const bar = progress(
    'replay',
    inputs.reduce((n, p) => n + estimateRows(p), 0),
  );
  const started = performance.now();
  const sent = await replayFilesToKafka(inputs, { brokers, topics, partitions, rate, onProgress: bar.tick });
  const secs = (performance.now() - started) / 1000;
  process.stderr.write(
    `replay: ${sent.transactions} transactions and ${sent.labels} labels in ${secs.toFixed(1)}s ` +
      `(${Math.round(sent.transactions / secs)} tx/s) → ${topics.transactions}, ${topics.labels}\n`,
  );
}
