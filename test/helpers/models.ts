import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Copies fraudscore version `from` under `dir` as version `to` (manifest renumbered); returns the new directory. */
export async function copyModelVersion(dir: string, from: string, to: string): Promise<string> {
  const target = join(dir, 'fraudscore', to);
  await cp(join(dir, 'fraudscore', from), target, { recursive: true });
  const manifest = join(target, 'manifest.json');
  await writeFile(manifest, JSON.stringify({ ...JSON.parse(await readFile(manifest, 'utf8')), version: to }));
  return target;
}
