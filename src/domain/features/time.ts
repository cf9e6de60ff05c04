export const SECOND_MS = 1000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

const mod = (a: number, n: number) => ((a % n) + n) % n;

/** 0 = Sunday … 6 = Saturday, in UTC. 1970-01-01 was a Thursday. */
export function utcWeekday(t: number): number {
  return mod(Math.floor(t / DAY_MS) + 4, 7);
}

export function utcHour(t: number): number {
  return Math.floor(mod(t, DAY_MS) / HOUR_MS);
}
