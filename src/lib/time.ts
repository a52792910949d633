const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * Remaining time split into whole days and hours, rounded down (a 1-day key just activated → 0 days, 23 hours).
 * Dates here are whole milliseconds while the database keeps microseconds, so an answer given within the
 * millisecond of activation would read "1 day, 0 hours"; time has passed since, however little, so we count one
 * millisecond less and never promise more time than the key has.
 */
export function remaining(expiresAt: Date, now: Date = new Date()): { days: number; hours: number } {
  const ms = Math.max(0, expiresAt.getTime() - now.getTime() - 1);
  const days = Math.floor(ms / DAY_MS);
  const hours = Math.floor((ms - days * DAY_MS) / HOUR_MS);
  return { days, hours };
}

export function addDays(date: Date, days: number): Date {
  return new Date(date.getTime() + days * DAY_MS);
}
