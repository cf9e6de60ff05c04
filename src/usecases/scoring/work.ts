import type { Transaction } from '../../domain/events.js';
import type { TxInput } from '../../domain/features/engine.js';
import type { DegradedReason, ScoreResult } from '../../domain/scoring/result.js';
import type { LoadedVersion } from '../models/loaded-version.js';
import type { Route } from '../models/registry.js';
import type { SharedOutcome } from './shared-answers.js';

/** Features by name, made on demand. */
export interface Explains {
  byName(): Record<string, number>;
}

/** One transaction on its way through a scoring request; the stages fill it in. */
export interface Work {
  /** Position in the request, so results keep request order. */
  readonly index: number;
  readonly tx: Transaction;
  readonly input: TxInput;
  /** The request's content, to tell a retry from a reused id. */
  readonly fingerprint: string;
  /** Undefined when no version can be routed to: the fallback rules answer. */
  readonly route: Route | undefined;
  features?: Float64Array;
  /** Its windows could not be read in time: its features are the defaults. */
  defaulted?: boolean;
  /** The version's input row (float32, its manifest's input order). */
  row?: Float32Array;
  score?: number;
  members?: number[];
  reasons?: ScoreResult['reasons'];
  degraded: DegradedReason[];
  /** The features by name, as ?explain=true shows them; set once the answer is decided. */
  explained?: Explains;
  /** What the shared answer store said of its id (absent without one). */
  shared?: SharedOutcome;
  /** The content's fingerprint as the shared answer store keeps it (absent without one). */
  sharedFingerprint?: string;
  /** Answered without scoring (by the shared store, or another replica's answer): nothing to audit. */
  settled?: boolean;
}

/**
 * A work item with every field present from the start: the stages then fill fields in place instead of adding
 * properties, so all items share one hidden class (adding `explained` and `reasons` late cost a map transition
 * each, about a fifth of the decision step's time in a profile).
 */
export function newWork(
  index: number,
  tx: Transaction,
  fingerprint: string,
  input: TxInput,
  route: Route | undefined,
  degraded: DegradedReason[],
): Work {
  return {
    index,
    tx,
    input,
    fingerprint,
    route,
    features: undefined,
    defaulted: undefined,
    row: undefined,
    score: undefined,
    members: undefined,
    reasons: undefined,
    degraded,
    explained: undefined,
    shared: undefined,
    sharedFingerprint: undefined,
    settled: undefined,
  };
}

/** Work items grouped by the version `versionOf` names, in first-seen order; items it maps to undefined are left out. */
export function groupByVersion(
  work: readonly Work[],
  versionOf: (w: Work) => LoadedVersion | undefined,
): Map<LoadedVersion, Work[]> {
  const groups = new Map<LoadedVersion, Work[]>();
  for (const w of work) {
    const v = versionOf(w);
    if (!v) continue;
    const list = groups.get(v);
    if (list) list.push(w);
    else groups.set(v, [w]);
  }
  return groups;
}
