/**
 * What a feature worker last said about itself, in processing (wall-clock) time: event times play no part.
 * The API reads these to tell how stale the features it scores with may be.
 */
export interface WorkerProgress {
  /** Who wrote it: one record per worker (consumer) instance. */
  readonly member: string;
  /**
   * Epoch ms of its last progress: the oldest of the last times each of its lagging partitions applied
   * events (or was assigned to it); the time of the record when no partition lags.
   */
  readonly progressAt: number;
  /** Messages behind the high watermarks, summed over its partitions. */
  readonly lag: number;
  /** Epoch ms when it was written. */
  readonly at: number;
}

/**
 * Where workers record their progress and the API reads it. A write is one round trip, made a few times a
 * second at most (never per message); records expire some time after their last write.
 */
export interface WorkerProgressStore {
  record(progress: WorkerProgress): Promise<void>;
  /** Drops `member`'s record (a worker that stops cleanly). */
  remove(member: string): Promise<void>;
  /** Every record written within the expiry, by any worker. */
  readAll(): Promise<WorkerProgress[]>;
}
