import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The training venv's Python (scripts/python-env.sh); fails, naming the fix, when it is missing. */
export function trainingPython(): string {
  const python = process.env.FRAUDSCORE_PYTHON ?? resolve('training/.venv/bin/python');
  if (!existsSync(python))
    throw new Error(`training Python not found at ${python} — create it with scripts/python-env.sh`);
  return python;
}

/** Runs `python -m fraudscore_training.<module> ...args` in training/. */
export async function trainingModule(module: string, args: readonly string[]): Promise<string> {
  const { stdout, stderr } = await run(trainingPython(), ['-m', `fraudscore_training.${module}`, ...args], {
    cwd: resolve('training'),
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout + stderr;
}
