import type { Card, GateVerdict } from './card.js';
import type { LoadFailure } from './load-error.js';

/** What the registry reports of each model and version: the admin API's and the CLI's listing. */
export type VersionState = 'available' | 'loaded' | 'active' | 'canary' | 'shadow' | 'failed';

export interface Failure {
  readonly code: LoadFailure | 'error';
  readonly reason: string;
  /** Epoch milliseconds. */
  readonly at: number;
}

export interface VersionStatus {
  readonly version: string;
  readonly state: VersionState;
  readonly onDisk: boolean;
  /** The version `rollback` would restore. */
  readonly rollbackTarget: boolean;
  readonly canaryPercent?: number;
  readonly loadedAt?: string;
  readonly inFlight?: number;
  readonly createdAt?: string;
  readonly featureSet?: string;
  readonly description?: string;
  readonly evaluation?: Record<string, unknown>;
  /** The gate's verdict from the model card; `none` when the version has no card. */
  readonly gate?: GateVerdict | 'none';
  /** The model card (manifest `card`), when the version has one. */
  readonly card?: Card;
  /** The last failed load; kept until a load of this version succeeds. */
  readonly failure?: Failure;
  /** The manifest on disk could not be read or validated. */
  readonly manifestError?: string;
}

export interface ModelStatus {
  readonly name: string;
  readonly active?: string;
  readonly previous?: string;
  readonly canary?: { readonly version: string; readonly percent: number };
  readonly shadow?: { readonly version: string };
  readonly versions: readonly VersionStatus[];
}
