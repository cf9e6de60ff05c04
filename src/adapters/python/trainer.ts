import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { GateRequest, GateResult, Trainer, TrainRequest } from '../../ports/trainer.js';

export interface PythonTrainerOptions {
  /** The training venv's interpreter (FRAUDSCORE_PYTHON; default training/.venv/bin/python). */
  readonly python: string;
  /** The folder holding the fraudscore_training package (default training). */
  readonly packageDir: string;
}

/** Runs `python -m fraudscore_training.<module>`: stderr lines go to `onLine`, stdout is returned. */
function runModule(
  o: PythonTrainerOptions,
  module: string,
  args: readonly string[],
  onLine: (line: string) => void,
): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(o.python, ['-m', `fraudscore_training.${module}`, ...args], {
      env: { ...process.env, PYTHONPATH: resolve(o.packageDir), PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const tail: string[] = [];
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    createInterface({ input: child.stderr }).on('line', (line) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      onLine(line);
    });
    child.on('error', (err) =>
      fail(new Error(`cannot run ${o.python} (FRAUDSCORE_PYTHON; scripts/python-env.sh): ${err.message}`)),
    );
    child.on('close', (code, signal) => {
      if (code === 0) done(out);
      else
        fail(
          new Error(
            `python -m fraudscore_training.${module} failed (${signal ?? `exit ${code}`}):\n${tail.join('\n')}`,
          ),
        );
    });
  });
}

export class PythonTrainer implements Trainer {
  constructor(private readonly o: PythonTrainerOptions) {}

  async train(r: TrainRequest, onLine: (line: string) => void): Promise<void> {
    await runModule(
      this.o,
      'train',
      [
        ...['--features', r.features, '--folder', r.folder, '--name', r.name, '--version', r.version],
        ...['--feature-set', r.featureSet, '--features-dir', resolve(r.featureDir)],
        ...['--train-until', r.trainUntil, '--seed', String(r.seed), '--no-prequential'],
        ...r.options,
      ],
      onLine,
    );
  }

  async gate(r: GateRequest, onLine: (line: string) => void): Promise<GateResult> {
    const context = join(r.workDir, 'gate-context.json');
    await writeFile(context, JSON.stringify(r.context));
    const out = await runModule(
      this.o,
      'gate',
      [
        ...['--features', r.features, '--candidate', r.candidate],
        ...(r.champion ? ['--champion', r.champion.folder, '--champion-features', r.champion.features] : []),
        ...['--test-from', r.testFrom, '--test-days', String(r.testDays)],
        ...r.rules.flatMap((x) => ['--rule', x]),
        ...[
          '--resamples',
          String(r.resamples),
          '--seed',
          String(r.seed),
          '--confidence',
          String(r.confidence),
        ],
        ...['--context', context],
      ],
      onLine,
    );
    const last = out.trim().split('\n').at(-1) ?? '';
    return JSON.parse(last) as GateResult;
  }
}
