#!/usr/bin/env node
import { ConfigError } from '../config.js';
import { UsageError } from './usage.js';

interface Command {
  readonly summary: string;
  load(): Promise<{ run(argv: string[]): Promise<void>; help: string }>;
}

const commands: Record<string, Command> = {
  serve: {
    summary: 'run the scoring API (Fastify) — the default deployment unit',
    load: () => import('./serve.js'),
  },
  worker: {
    summary: 'consume transactions and labels from Kafka into the feature store',
    load: () => import('./worker.js'),
  },
  backfill: {
    summary: 'compute the training set from handbook CSV files with the online engine',
    load: () => import('./backfill.js'),
  },
  replay: {
    summary: 'publish handbook CSV files to Kafka as transaction and label events',
    load: () => import('./replay.js'),
  },
  retrain: {
    summary: 'build, evaluate (gate against the champion) and publish the next model version',
    load: () => import('./retrain.js'),
  },
  models: {
    summary: 'list, validate and switch model versions (directory or running service)',
    load: () => import('./models.js'),
  },
};

const usage = `fraudscore — real-time fraud scoring

Usage: fraudscore <command> [options]      fraudscore <command> --help

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join('\n')}

Configuration comes from environment variables (see README, "Configuration").`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage}\n`);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`unknown command: ${name}\n\n${usage}\n`);
    return 2;
  }
  const mod = await command.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${mod.help}\n`);
    return 0;
  }
  try {
    await mod.run(rest);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${err.help}\n`);
      return 2;
    }
    if (
      err instanceof ConfigError ||
      (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // Long-running commands keep the loop alive themselves; one-shot commands end here.
    if (code !== 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
