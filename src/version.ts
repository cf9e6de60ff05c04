import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The nearest package.json above this module: src/ under tsx, dist/src/ when built. */
function packageJson(): { version: string } {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return { version: '0.0.0' };
    dir = up;
  }
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string };
}

/** Package version and git commit (GIT_COMMIT, set in images; else asked of git; else "unknown"). */
export function buildInfo(): { version: string; commit: string } {
  let commit = process.env.GIT_COMMIT ?? '';
  if (!commit) {
    try {
      commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim();
    } catch {
      commit = 'unknown';
    }
  }
  return { version: packageJson().version, commit };
}
