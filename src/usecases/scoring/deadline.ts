import type { Clock } from '../../ports/clock.js';

export class DeadlineExceeded extends Error {
  override name = 'DeadlineExceeded';
}

const ignore = () => {};

/** Resolves with `work` or rejects with DeadlineExceeded after `ms`; the timer never keeps the process alive. */
export function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  if (ms <= 0) {
    work.catch(ignore);
    return Promise.reject(new DeadlineExceeded('deadline already passed'));
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded(`no answer within ${ms.toFixed(1)} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * One request's deadline, `at` monotonic ms on `clock`: the scorer's stages (the answer claims, the feature
 * reads, inference) race the same timer, set on the first race and cleared by `end()` (a timer per stage cost a
 * timer, two closures and a `finally` chain each). The timer never keeps the process alive.
 */
export class Deadline {
  private expiry: Promise<never> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly at: number,
    private readonly clock: Pick<Clock, 'monotonic'>,
  ) {}

  /** Milliseconds left; zero or less once it has passed. */
  left(): number {
    return this.at - this.clock.monotonic();
  }

  /** Resolves with `work`, or rejects with DeadlineExceeded when the deadline passes first (or has passed). */
  race<T>(work: Promise<T>): Promise<T> {
    const ms = this.left();
    if (ms <= 0) {
      work.catch(ignore);
      return Promise.reject(new DeadlineExceeded('deadline already passed'));
    }
    if (!this.expiry) {
      this.expiry = new Promise<never>((_, reject) => {
        this.timer = setTimeout(
          () => reject(new DeadlineExceeded(`no answer within ${ms.toFixed(1)} ms`)),
          ms,
        );
        this.timer.unref();
      });
      // Between two stages nobody races it: that is not an unhandled rejection.
      this.expiry.catch(ignore);
    }
    return Promise.race([work, this.expiry]);
  }

  /** Clears the timer: the request is answered. A race after it sets a timer of its own. */
  end(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.expiry = undefined;
  }
}
