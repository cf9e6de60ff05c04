export interface Clock {
  /** Wall-clock epoch milliseconds. */
  now(): number;
  /** Monotonic milliseconds with sub-millisecond resolution, for durations. */
  monotonic(): number;
}
