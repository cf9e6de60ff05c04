import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * The training package's folder (`<repo>/training`): found upwards from this file, so it works from `src/`
 * under tsx and from `dist/src/` once built. Undefined when the package is not installed beside the code.
 */
export function trainingDir(from = import.meta.dirname): string | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'training', 'fraudscore_training', '__init__.py'))) return join(dir, 'training');
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Runs `python -m fraudscore_training.<module> ...args` with the training venv's interpreter
 * (FRAUDSCORE_PYTHON, else `training/.venv/bin/python`, as scripts/python-env.sh creates it), the package on
 * PYTHONPATH, stdout and stderr passed through. Resolves when it exits 0; rejects with the exit code otherwise.
 */
export async function runTrainingModule(module: string, args: readonly string[]): Promise<void> {
  const dir = trainingDir();
  if (!dir) throw new Error('the training package (training/fraudscore_training) is not beside this install');
  const python = process.env.FRAUDSCORE_PYTHON ?? join(dir, '.venv', 'bin', 'python');
  if (!existsSync(python))
    throw new Error(`training Python not found at ${python}: create it with scripts/python-env.sh`);
  const path = [dir, process.env.PYTHONPATH].filter(Boolean).join(':');
  const child = spawn(python, ['-m', `fraudscore_training.${module}`, ...args], {
    env: { ...process.env, PYTHONPATH: path },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const code = await new Promise<number | null>((ok, fail) => {
    child.on('error', fail);
    child.on('exit', (c, signal) => ok(signal ? -1 : c));
  });
  if (code !== 0) throw new Error(`python -m fraudscore_training.${module} failed (exit ${code})`);
}
