import type { ApplyOutcome } from '../domain/features/records.js';

/** Hooks for metrics; every method is optional so tests can observe only what they need. */
export interface WorkerObserver {
  events?(topic: string, outcome: ApplyOutcome | 'invalid', n: number): void;
  lag?(topic: string, partition: number, lag: number): void;
  storeWrite?(seconds: number): void;
  deadLetter?(topic: string): void;
  /** Event time (ms) of the newest event applied. */
  applied?(eventTimeMs: number): void;
}
