export interface Clock {
  /** Wall-clock epoch milliseconds. */
  now(): number;
  /** Monotonic milliseconds with sub-millisecond resolution, for durations. */
  monotonic(): number;
}

/** Events dated more than `maxFutureMs` after `clock.now()` are refused as `future` (MAX_EVENT_FUTURE_MS). */
export interface FutureLimit {
  readonly clock: Clock;
  readonly maxFutureMs: number;
}
