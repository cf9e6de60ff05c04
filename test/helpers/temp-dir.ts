import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, onTestFinished } from 'vitest';

/** Removes a directory tree; a directory already gone is fine. */
export const removeDir = (dir: string): Promise<void> => rm(dir, { recursive: true, force: true });

/**
 * A fresh directory under the OS temp dir (`<prefix>XXXXXX`), removed when the current test finishes, pass or fail.
 * Only inside a test body; in `beforeAll`/`beforeEach` use `tempDirs()`.
 */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onTestFinished(() => removeDir(dir));
  return dir;
}

/**
 * Call at collection time (module or `describe` level, before the `afterAll` that stops whatever uses the
 * directories): returns a maker of temp directories, all removed in an `afterAll` of that scope. Hooks run as a
 * stack, so this `afterAll` runs after the ones registered later, once servers using the directories are closed.
 */
export function tempDirs(): (prefix: string) => Promise<string> {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.splice(0).map(removeDir));
  });
  return async (prefix) => {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}
