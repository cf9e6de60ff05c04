import type { DecisionEntry, DecisionLog } from '../../ports/decision-log.js';
import type { Logger } from '../../ports/logger.js';

export interface DecisionRecorderOptions {
  readonly log: DecisionLog;
  readonly model: string;
  readonly logger: Logger;
  /** Entries held while the store is slow or away; beyond it the newest are dropped and counted. */
  readonly maxQueue?: number;
  /** Entries per store call. */
  readonly batchSize?: number;
  /** Told how many entries were dropped and why (fraudscore_decision_log_dropped_total). */
  readonly onDropped?: (n: number, reason: 'queue_full' | 'store_error') => void;
}

/**
 * Records decisions in the decision log off the response path: `record` only queues (bounded), one drain at a
 * time writes batches to the store. What does not fit, or what the store refuses, is dropped, counted and logged:
 * a decision missing from the log only leaves its label unjoined (counted as `unscored`), it never fails a request.
 */
export class DecisionRecorder {
  private queue: DecisionEntry[] = [];
  private draining: Promise<void> | undefined;
  private failing = false;

  constructor(private readonly o: DecisionRecorderOptions) {}

  record(entries: readonly DecisionEntry[]): void {
    if (entries.length === 0) return;
    const room = (this.o.maxQueue ?? 50_000) - this.queue.length;
    const kept = Math.max(0, Math.min(room, entries.length));
    for (let i = 0; i < kept; i++) this.queue.push(entries[i]!);
    if (kept < entries.length) this.drop(entries.length - kept, 'queue_full');
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
    });
  }

  /** Resolves once everything queued so far was written (or dropped). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    // Off the response path: the answer is sent before the first write.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const size = this.o.batchSize ?? 500;
    while (this.queue.length) {
      const batch = this.queue.splice(0, size);
      try {
        await this.o.log.record(this.o.model, batch);
        if (this.failing) this.o.logger.info({}, 'decision log available again');
        this.failing = false;
      } catch (err) {
        this.drop(batch.length, 'store_error', err);
      }
    }
  }

  private drop(n: number, reason: 'queue_full' | 'store_error', err?: unknown): void {
    this.o.onDropped?.(n, reason);
    if (reason === 'store_error' && this.failing) return;
    if (reason === 'store_error') this.failing = true;
    this.o.logger.warn(
      { dropped: n, reason, ...(err ? { err } : {}) },
      'decisions not recorded in the decision log',
    );
  }
}
