import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { WorkerProgress, WorkerProgressStore } from '../ports/worker-progress.js';
import { withDeadline } from './scoring/deadline.js';

export interface StalenessDeps {
  /** Where the feature workers record their progress. */
  readonly progress: WorkerProgressStore;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Staleness beyond this many ms makes answers `features_stale`; 0: never. */
  readonly maxMs: number;
  /** The records are read in the background once per this many ms (default 1000), never on a request. */
  readonly refreshMs?: number;
}

/**
 * How stale the features may be: the wall-clock time since the workers last made progress, counted only while
 * they lag (a worker with nothing to consume is current; event times play no part). The workers' records are
 * read in the background at most once per `refreshMs`; `seconds()` and `stale()` answer from memory, so
 * scoring never waits on them. With no record (no worker), nothing is stale.
 *
 * While the records cannot be read (the store is away), the last ones read stand, and every worker counts as
 * current only up to the last moment it was known to be: staleness grows from there.
 */
export class FeatureStaleness {
  private records: readonly WorkerProgress[] = [];
  private readOk = true;
  /** Until a first read succeeds there is nothing to count from, and nothing worth a warning. */
  private everRead = false;
  private reading: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private wasStale = false;

  constructor(private readonly d: StalenessDeps) {}

  /** Reads now, then once per `refreshMs` until `stop()`. */
  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.d.refreshMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One read of the records (a read already under way is joined, not repeated). */
  refresh(): Promise<void> {
    this.reading ??= withDeadline(this.d.progress.readAll(), this.d.refreshMs ?? 1000)
      .then(
        (records) => {
          if (!this.readOk && this.everRead) this.d.logger.info({}, 'worker progress readable again');
          this.records = records;
          this.readOk = true;
          this.everRead = true;
        },
        (err: unknown) => {
          if (this.readOk && this.everRead)
            this.d.logger.warn(
              { err },
              'cannot read the worker progress; counting staleness from the last read',
            );
          this.readOk = false;
        },
      )
      .finally(() => {
        this.reading = undefined;
        const stale = this.stale();
        if (stale !== this.wasStale)
          (stale ? this.d.logger.warn : this.d.logger.info).call(
            this.d.logger,
            { stalenessSeconds: this.seconds(), maxMs: this.d.maxMs },
            stale ? 'features are stale: answers carry features_stale' : 'features are current again',
          );
        this.wasStale = stale;
      });
    return this.reading;
  }

  /** Seconds since the workers last made progress while lagging; 0 when every worker is current. */
  seconds(): number {
    const now = this.d.clock.now();
    let worst = 0;
    for (const r of this.records) {
      // A worker that said it lags is stale since its last progress; one that said it was current is stale
      // since it said so, once its word can no longer be checked.
      if (r.lag > 0) worst = Math.max(worst, now - r.progressAt);
      else if (!this.readOk) worst = Math.max(worst, now - r.at);
    }
    return worst / 1000;
  }

  /** Workers whose records the last successful read found. */
  workers(): number {
    return this.records.length;
  }

  /** Whether answers should say `features_stale`. */
  stale(): boolean {
    return this.d.maxMs > 0 && this.seconds() * 1000 > this.d.maxMs;
  }
}
