import type { CompiledFeatureSet } from '../domain/features/engine.js';
import type { Manifest } from '../domain/models/manifest.js';
import type { MemberSession } from './model-runtime.js';

/** A version that passed every check: checksums, names, feature set, golden examples, warm-up. */
export interface VerifiedVersion {
  readonly manifest: Manifest;
  readonly featureSet: CompiledFeatureSet;
  /** One per manifest member, same order. The receiver owns them and must release them. */
  readonly sessions: readonly MemberSession[];
}

/** Where the registry finds model versions. Errors are ModelLoadError with a reason an operator can act on. */
export interface ModelSource {
  /** Complete versions per model name, ascending. */
  list(): Promise<ReadonlyMap<string, readonly string[]>>;
  /** Parses and validates the manifest only, for listings; does not load sessions. */
  readManifest(name: string, version: string): Promise<Manifest>;
  load(name: string, version: string): Promise<VerifiedVersion>;
}
