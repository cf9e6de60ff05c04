import type { Transaction } from '../domain/events.js';
import type { ScoreResult } from '../domain/scoring/result.js';
import type { TraceContext } from './tracer.js';

export interface ScoreOptions {
  readonly explain: boolean;
  /** Monotonic time (ms) by which an answer must be ready. */
  readonly deadline: number;
  /** The caller's span (the HTTP request's), when tracing is on: the scoring spans are its children. */
  readonly trace?: TraceContext;
}

export interface Readiness {
  readonly ready: boolean;
  readonly checks: Record<string, { ok: boolean; detail?: string }>;
}

/** What the HTTP layer needs from scoring; the implementation wires store, models, metrics and audit log. */
export interface ScoringService {
  /** Rejects with a `conflict` ServiceError when a transaction id was scored before with other content. */
  score(txs: readonly Transaction[], o: ScoreOptions): Promise<ScoreResult[]>;
  readiness(): Promise<Readiness>;
}
