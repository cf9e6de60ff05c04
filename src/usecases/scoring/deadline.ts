export class DeadlineExceeded extends Error {
  override name = 'DeadlineExceeded';
}

/** Resolves with `work` or rejects with DeadlineExceeded after `ms`; the timer never keeps the process alive. */
export function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  if (ms <= 0) {
    work.catch(() => {});
    return Promise.reject(new DeadlineExceeded('deadline already passed'));
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded(`no answer within ${ms.toFixed(1)} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
