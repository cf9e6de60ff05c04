import type { TraceContext } from '../../ports/tracer.js';
import type { ScoreResult } from './batcher.js';
import type { LoadedVersion } from './loaded-version.js';
import { type ModelRegistry, RegistryError } from './registry.js';

/**
 * The loaded version `name@version`, or the active version of `name` when no version is given. Throws
 * `not_loaded` (404) or `no_active` (409).
 */
export function loadedVersion(registry: ModelRegistry, name: string, version?: string): LoadedVersion {
  if (version === undefined) {
    const active = registry.active(name);
    if (!active) throw new RegistryError('no_active', `${name} has no active version`);
    return active;
  }
  const lv = registry.get(name, version);
  if (!lv || lv.state === 'released')
    throw new RegistryError('not_loaded', `${name}@${version} is not loaded`);
  return lv;
}

/**
 * Scores model-input rows (float32, in the version's manifest input order) with one loaded version, through its
 * micro-batcher: the ensemble score and each member's output per row. Feature vectors only — no feature store, no
 * audit record, no decision metric, no drift observation. The version is leased for the call, so it cannot be
 * released under it.
 */
export async function inferRows(
  version: LoadedVersion,
  rows: readonly Float32Array[],
  trace?: TraceContext,
): Promise<ScoreResult[]> {
  let lease: ReturnType<LoadedVersion['acquire']>;
  try {
    lease = version.acquire();
  } catch {
    throw new RegistryError('not_loaded', `${version.id} is not loaded`);
  }
  try {
    return await version.scoreMany(rows, trace);
  } finally {
    lease.release();
  }
}
