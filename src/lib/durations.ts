import { DAYS, plural } from "./plural.ts";

/**
 * The only subscription lengths the shop sells, in days (docs/panel.md#products). The database enforces the same
 * list.
 */
export const DURATIONS = [1, 7, 14, 30, 90] as const;
export type DurationDays = (typeof DURATIONS)[number];

export function isDuration(value: unknown): value is DurationDays {
  return typeof value === "number" && (DURATIONS as readonly number[]).includes(value);
}

/** Parses a duration typed by a person or a program ("7", " 30 "); null when it is not one we sell. */
export function parseDuration(text: string): DurationDays | null {
  if (!/^\s*\d{1,3}\s*$/.test(text)) return null;
  const n = Number(text);
  return isDuration(n) ? n : null;
}

/** Russian plural of «день»: 1 день, 2 дня, 5 дней, 11 дней, 21 день, 22 дня. */
export function dayWord(n: number): string {
  return plural(n, DAYS);
}

/** "1 день", "7 дней", "14 дней" — how a duration is named in the bot and the panel. */
export function daysLabel(n: number): string {
  return `${n} ${dayWord(n)}`;
}
