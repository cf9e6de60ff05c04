/**
 * The layer rules live in biome.json (noRestrictedImports per folder) and run in `npm run lint`. This proves
 * they bite: each wrong-way import below, linted with the project's own configuration in a scratch tree,
 * fails; each right-way import passes.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../../..');
const BIOME = join(ROOT, 'node_modules/.bin/biome');
const scratch = mkdtempSync(join(tmpdir(), 'fraudscore-layers-'));

const config = JSON.parse(readFileSync(join(ROOT, 'biome.json'), 'utf8'));
delete config.$schema;
delete config.vcs;
config.files = { includes: ['**'] };

let n = 0;
function lint(file: string, specifier: string): { ok: boolean; output: string } {
  const dir = join(scratch, String(n++));
  const path = join(dir, file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(join(dir, 'biome.json'), JSON.stringify(config));
  writeFileSync(path, `import { x } from '${specifier}';\n\nexport const y = x;\n`);
  const r = spawnSync(BIOME, ['lint', '.'], { cwd: dir, encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('layer rules (npm run lint)', () => {
  const wrong: [string, string][] = [
    ['src/domain/features/x.ts', '../../ports/feature-store.js'],
    ['src/domain/x.ts', '../adapters/redis/redis-store.js'],
    ['src/domain/x.ts', '../usecases/ingest.js'],
    ['src/domain/x.ts', '../config.js'],
    ['src/domain/x.ts', 'ioredis'],
    ['src/ports/x.ts', '../usecases/scoring/scorer.js'],
    ['src/ports/x.ts', '../adapters/memory/memory-store.js'],
    ['src/usecases/scoring/x.ts', '../../adapters/redis/redis-store.js'],
    ['src/usecases/x.ts', '../http/app.js'],
    ['src/usecases/x.ts', '../config.js'],
    ['src/usecases/x.ts', 'kafkajs'],
    // Tracing enters through the Tracer port; only the adapter knows OpenTelemetry.
    ['src/usecases/scoring/x.ts', '@opentelemetry/api'],
    ['src/ports/x.ts', '@opentelemetry/api'],
    ['src/domain/x.ts', '@opentelemetry/api'],
    ['src/http/x.ts', '@opentelemetry/sdk-trace-base'],
    ['src/adapters/kafka/x.ts', '../../http/errors.js'],
    ['src/adapters/kafka/x.ts', '../../wiring/service.js'],
    ['src/http/routes/x.ts', '../../adapters/redis/redis-store.js'],
    ['src/http/x.ts', '../wiring/service.js'],
    ['src/wiring/x.ts', '../cli/main.js'],
    ['src/cli/x.ts', '../adapters/logging/logger.js'],
    ['src/cli/x.ts', '../usecases/ingest.js'],
  ];
  it.each(wrong)('refuses %s importing %s', (file, specifier) => {
    const r = lint(file, specifier);
    expect(r.ok).toBe(false);
    expect(r.output).toContain('noRestrictedImports');
    expect(r.output).toContain('layers:');
  });

  const right: [string, string][] = [
    ['src/domain/features/x.ts', '../records.js'],
    ['src/domain/x.ts', 'zod'],
    ['src/ports/x.ts', '../domain/features/records.js'],
    ['src/usecases/scoring/x.ts', '../../ports/feature-store.js'],
    ['src/adapters/redis/x.ts', '../../usecases/ingest.js'],
    ['src/adapters/tracing/x.ts', '@opentelemetry/sdk-trace-base'],
    ['src/usecases/scoring/x.ts', '../../ports/tracer.js'],
    ['src/http/routes/x.ts', '../../usecases/ingest.js'],
    ['src/wiring/x.ts', '../adapters/redis/redis-store.js'],
    ['src/cli/x.ts', '../wiring/service.js'],
  ];
  it.each(right)('allows %s importing %s', (file, specifier) => {
    const r = lint(file, specifier);
    expect(r.output).not.toContain('noRestrictedImports');
    expect(r.ok).toBe(true);
  });
});
