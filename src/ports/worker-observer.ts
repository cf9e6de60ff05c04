import type { ApplyOutcome } from '../domain/features/records.js';

/** Hooks for metrics; every method is optional so tests can observe only what they need. */
export interface WorkerObserver {
  events?(topic: string, outcome: ApplyOutcome | 'invalid', n: number): void;
  /** Messages behind the high watermark: at the start of each batch, after each chunk, and while a write waits. */
  lag?(topic: string, partition: number, lag: number): void;
  /** Wall-clock ms when the partition last applied events (or was assigned to this worker). */
  partitionApplied?(topic: string, partition: number, wallClockMs: number): void;
  /** The partition went to another worker: forget what was reported about it. */
  released?(topic: string, partition: number): void;
  storeWrite?(seconds: number): void;
  deadLetter?(topic: string): void;
  /** Event time (ms) of the newest event applied. */
  applied?(eventTimeMs: number): void;
}
