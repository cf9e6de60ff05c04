import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FeatureSetSchema } from '../../domain/features/definition.js';
import { type CompiledFeatureSet, compileFeatureSet } from '../../domain/features/engine.js';

/** Reads and validates every `*.json` feature set in `dir`; a broken definition stops the caller with its path. */
export function loadFeatureSets(dir: string): Map<string, CompiledFeatureSet> {
  const sets = new Map<string, CompiledFeatureSet>();
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const path = join(dir, file);
    const parsed = FeatureSetSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (!parsed.success) throw new Error(`invalid feature set ${path}: ${parsed.error.message}`);
    const compiled = compileFeatureSet(parsed.data);
    if (sets.has(compiled.id)) throw new Error(`feature set ${compiled.id} is defined twice (${path})`);
    sets.set(compiled.id, compiled);
  }
  return sets;
}
