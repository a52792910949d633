import { dayWord } from "../src/lib/durations.ts";

export { plural } from "../src/lib/plural.ts";

import { SHOP_TIME_ZONE } from "../src/shop/orders/sales.ts";

const dateTime = new Intl.DateTimeFormat("ru-RU", {
  timeZone: SHOP_TIME_ZONE,
  day: "2-digit",
  month: "2-digit",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});
const dateOnly = new Intl.DateTimeFormat("ru-RU", {
  timeZone: SHOP_TIME_ZONE,
  day: "2-digit",
  month: "2-digit",
  year: "numeric",
});
const shortDay = new Intl.DateTimeFormat("ru-RU", { timeZone: "UTC", day: "numeric", month: "short" });
const integer = new Intl.NumberFormat("ru-RU", { maximumFractionDigits: 0 });

/** "23.11.2026, 20:42" in Moscow time; "—" for nothing. */
export function when(date: Date | null | undefined): string {
  return date ? dateTime.format(date) : "—";
}

export function day(date: Date | null | undefined): string {
  return date ? dateOnly.format(date) : "—";
}

/** "2026-11-23" (a Moscow calendar day from SQL) → "23 нояб." */
export function calendarDay(isoDay: string): string {
  return shortDay.format(new Date(`${isoDay}T00:00:00Z`));
}

/** "1 999 ₽" with a narrow no-break space between thousands. */
export function rub(amount: number): string {
  return `${integer.format(amount)} ₽`;
}

/** A payment's amount as the ledger keeps it ("150.00"), in whole Stars: "150". */
export const wholeStars = (amount: string) => amount.replace(/\.0+$/, "");

/** "1 500 ⭐": Telegram Stars, the shop's second currency. */
export function stars(amount: number): string {
  return `${integer.format(amount)} ⭐`;
}

export function count(n: number): string {
  return integer.format(n);
}

export function days(n: number): string {
  return `${n} ${dayWord(n)}`;
}

/** Bytes as the owner reads them: "12,4 МБ". */
export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} Б`;
  const units = ["КБ", "МБ", "ГБ"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toLocaleString("ru-RU", { maximumFractionDigits: 1 })} ${units[unit]}`;
}

/** A Telegram user as the owner recognises them: "Иван Петров (@ivan)". */
export function personName(p: { firstName?: string | null; lastName?: string | null; username?: string | null }) {
  const name = [p.firstName, p.lastName].filter(Boolean).join(" ");
  if (name && p.username) return `${name} (@${p.username})`;
  return name || (p.username ? `@${p.username}` : "без имени");
}
