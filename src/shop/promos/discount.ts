/**
 * What a promo code takes off a price (docs/panel.md#promo-codes). Whole roubles and whole Stars, integers only:
 * the discount is rounded down, so the shop never gives more than the code says and never charges a fraction.
 */

/** A code's discount: a percent (1–100) or a fixed number of roubles. */
export type Discount = { percent: number; rub: null } | { percent: null; rub: number };

/** A price in roubles and, when the duration has one, in Stars. */
export type Price = { rub: number; stars: number | null };

/** ⌈a / b⌉ for non-negative integers, exact (the operands stay far below 2^53). */
const ceilDiv = (a: number, b: number) => Math.floor((a + b - 1) / b);

/**
 * The price after the discount. A percent comes off both prices alike. A fixed discount comes off the rouble price
 * and off the Stars price in the same proportion. A fixed discount as large as the price or larger makes it free —
 * never negative: «500 ₽ off» on a 299 ₽ key is that key for nothing (limit the code's durations when that is not
 * meant). The price is free in Stars exactly when it is free in roubles, so a non-zero rouble price never becomes a
 * zero Stars price.
 */
export function discounted(list: Price, discount: Discount): Price {
  if (discount.percent !== null) {
    const keep = 100 - discount.percent;
    const rub = ceilDiv(list.rub * keep, 100);
    return { rub, stars: list.stars === null ? null : rub === 0 ? 0 : ceilDiv(list.stars * keep, 100) };
  }
  const rub = Math.max(0, list.rub - discount.rub);
  return { rub, stars: list.stars === null ? null : ceilDiv(list.stars * rub, list.rub) };
}

/** How the discount is named to a buyer and in the panel: «−25%», «−300 ₽». */
export function discountLabel(discount: Discount): string {
  return discount.percent !== null ? `−${discount.percent}%` : `−${discount.rub} ₽`;
}
