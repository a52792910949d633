import type { Sql, Tx } from "../../db/client.ts";
import { DURATIONS, type DurationDays, daysLabel, isDuration } from "../../lib/durations.ts";
import { log } from "../../lib/log.ts";
import type { ShopDeps } from "../deps.ts";
import { conflict, invalid, notFound, pgCode } from "../errors.ts";
import { PAID_STATUSES } from "../orders/lists.ts";
import { SHOP_TIME_ZONE } from "../orders/sales.ts";
import { type Discount, discounted, type Price } from "./discount.ts";

/**
 * Promo codes (docs/panel.md#promo-codes): what a code is, creating and editing one, its uses and revenue, and the
 * one check every use goes through — `applyPromo`, run inside the transaction that places the order, under the
 * code's row lock, so its limits hold however many buyers apply it at the same moment.
 */

export const CODE_PATTERN = /^[A-Z0-9_-]{3,32}$/;
export const MAX_PROMO_RUB = 10_000_000;
export const MAX_PROMO_USES = 1_000_000;

export type PromoCode = {
  id: number;
  code: string;
  discount: Discount;
  /** Only this product (null: every product). */
  productId: number | null;
  productName: string | null;
  /** Only these durations (null: every duration). */
  days: DurationDays[] | null;
  /** Uses in all (null: no limit). */
  maxUses: number | null;
  /** Uses per buyer (null: no limit). */
  maxUsesPerBuyer: number | null;
  /** The last Moscow day it works, "YYYY-MM-DD", inclusive (null: no end). */
  validUntil: string | null;
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
};

/** A code with what it has brought: uses paid and held, revenue (what was actually charged) and the discount given. */
export type PromoListItem = PromoCode & {
  /** Paid orders with the code (test payments included: a use is a use). */
  used: number;
  /** Unpaid orders holding a use while their reservation lasts. */
  held: number;
  /** Money in, test payments excluded. */
  revenueRub: number;
  revenueStars: number;
  /** Roubles taken off the list price of the paid orders. */
  discountRub: number;
  expired: boolean;
};

/** What the owner fills in to create or edit a code (the code itself is fixed once created). */
export type PromoInput = {
  discount: Discount;
  productId: number | null;
  days: DurationDays[] | null;
  maxUses: number | null;
  maxUsesPerBuyer: number | null;
  validUntil: string | null;
  enabled: boolean;
};

/** Why a code does not apply to this purchase; each has its own words for the buyer (shop/texts/buyers.ts). */
export type PromoRefusal =
  | "unknown"
  | "disabled"
  | "expired"
  | "other_product"
  | "other_duration"
  | "used_up"
  | "used_by_you";

/** A code that applies: what the order records. */
export type AppliedPromo = { id: number; code: string; discount: Discount };

export type PromoVerdict =
  | { ok: true; promo: AppliedPromo }
  /** `productName` / `days`: what the code is for, when it is for something else. */
  | { ok: false; reason: PromoRefusal; code: string; productName?: string | null; days?: DurationDays[] | null };

/** The code as stored: trimmed, upper case; null when it cannot be a code at all. */
export function canonicalCode(text: string): string | null {
  const code = text.trim().toUpperCase();
  return CODE_PATTERN.test(code) ? code : null;
}

/** Why a typed code cannot be created, or null. */
export function codeProblem(text: string): string | null {
  return canonicalCode(text) === null ? "Код — от 3 до 32 символов: латинские буквы, цифры, «_» и «-»" : null;
}

/** "2026-12-31" that is a real calendar day, or null. */
export function parseDay(text: string): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text.trim());
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  const real = date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
  return real && y >= 2000 && y <= 2999 ? m[0] : null;
}

/** Every rule of a code's settings, with the field each message is about. */
export function validatePromo(input: PromoInput): void {
  const { discount } = input;
  if (discount.percent !== null) {
    if (!Number.isInteger(discount.percent) || discount.percent < 1 || discount.percent > 100) {
      throw invalid("Скидка в процентах — целое число от 1 до 100", "percent");
    }
  } else if (!Number.isInteger(discount.rub) || discount.rub < 1 || discount.rub > MAX_PROMO_RUB) {
    throw invalid("Скидка в рублях — целое число от 1 до 10 000 000", "rub");
  }
  if (input.days !== null && (input.days.length === 0 || !input.days.every(isDuration))) {
    throw invalid(`Сроки — из ${DURATIONS.join(", ")} дней; не выбрано ни одного — значит, все`, "days");
  }
  const limit = (n: number | null, field: string, words: string) => {
    if (n !== null && (!Number.isInteger(n) || n < 1 || n > MAX_PROMO_USES)) {
      throw invalid(`${words} — целое число от 1 до 1 000 000 (пусто — без ограничения)`, field);
    }
  };
  limit(input.maxUses, "maxUses", "Всего использований");
  limit(input.maxUsesPerBuyer, "maxUsesPerBuyer", "Использований на покупателя");
  if (input.validUntil !== null && parseDay(input.validUntil) === null) {
    throw invalid("Дата — в виде ГГГГ-ММ-ДД, например 2026-12-31", "validUntil");
  }
}

type PromoRow = {
  id: string;
  code: string;
  percent: number | null;
  rub: number | null;
  product_id: string | null;
  product_name: string | null;
  days: number[] | null;
  max_uses: number | null;
  max_uses_per_buyer: number | null;
  valid_until: string | null;
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
};

const toDiscount = (r: Pick<PromoRow, "percent" | "rub">): Discount =>
  r.percent !== null ? { percent: r.percent, rub: null } : { percent: null, rub: r.rub! };

function toPromo(r: PromoRow): PromoCode {
  return {
    id: Number(r.id),
    code: r.code,
    discount: toDiscount(r),
    productId: r.product_id === null ? null : Number(r.product_id),
    productName: r.product_name,
    days: r.days === null ? null : (r.days.filter(isDuration) as DurationDays[]),
    maxUses: r.max_uses,
    maxUsesPerBuyer: r.max_uses_per_buyer,
    validUntil: r.valid_until,
    enabled: r.enabled,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** A code's row with its product's name, as toPromo reads it. */
const promoColumns = (db: Sql | Tx) => db`
  pc.id, pc.code, pc.percent, pc.rub, pc.product_id, pc.days, pc.max_uses, pc.max_uses_per_buyer,
  pc.valid_until::text as valid_until, pc.enabled, pc.created_at, pc.updated_at, p.name as product_name`;

/** Whether a code's last day (a Moscow day, inclusive) is behind us — the same rule in SQL and here. */
const expiredSql = (db: Sql | Tx) =>
  db`(pc.valid_until is not null
      and now() >= ((pc.valid_until + 1)::timestamp at time zone ${SHOP_TIME_ZONE}))`;

/** Orders that use a code up: paid ones, and unpaid ones whose reservation still holds. */
const holdsAUse = (db: Sql | Tx) =>
  db`(o.status in ${db([...PAID_STATUSES])} or (o.status = 'pending' and o.reserved_until > now()))`;

/**
 * The price an order is placed at: the duration's list price after the buyer's code, if they typed one. A purchase
 * and a renewal price the same way, inside the transaction that places the order, so the code's use is held under
 * its row lock (applyPromo) until that order is committed. `replacing`: the buyer's pending order the new one
 * replaces, whose own use of the code does not count against them.
 */
export async function priceAfterCode(
  tx: Tx,
  input: {
    code: string | null | undefined;
    userId: number;
    productId: number;
    days: DurationDays;
    list: Price;
    replacing: number | null;
  },
): Promise<{ ok: true; promo: AppliedPromo | null; price: Price } | Extract<PromoVerdict, { ok: false }>> {
  if (!input.code) return { ok: true, promo: null, price: input.list };
  const verdict = await applyPromo(tx, {
    code: input.code,
    userId: input.userId,
    productId: input.productId,
    days: input.days,
    excludeOrderId: input.replacing,
    lock: true,
  });
  if (!verdict.ok) return verdict;
  return { ok: true, promo: verdict.promo, price: discounted(input.list, verdict.promo.discount) };
}

/**
 * Whether `code` applies to this purchase, and if so what it takes off. Inside `tx` the code's row is locked until
 * the transaction ends, so the uses counted here cannot change before the order that takes one is committed:
 * concurrent buyers applying the last use queue on that row and all but one are refused. `excludeOrderId`: an order
 * of this buyer that the new one replaces, whose use is not counted against them. Outside a transaction (a preview)
 * nothing is locked and the answer may change by the time the buyer confirms.
 */
export async function applyPromo(
  db: Sql | Tx,
  input: {
    code: string;
    userId: number;
    productId: number;
    days: DurationDays;
    excludeOrderId?: number | null | undefined;
    lock: boolean;
  },
): Promise<PromoVerdict> {
  const code = canonicalCode(input.code);
  const typed = input.code.trim().slice(0, 32);
  if (code === null) return { ok: false, reason: "unknown", code: typed };
  const [row] = await db<(PromoRow & { expired: boolean })[]>`
    select ${promoColumns(db)}, ${expiredSql(db)} as expired
    from promo_codes pc left join products p on p.id = pc.product_id
    where pc.code = ${code}
    ${input.lock ? db`for update of pc` : db``}`;
  if (!row) return { ok: false, reason: "unknown", code };
  const promo = toPromo(row);
  const refuse = (reason: PromoRefusal): PromoVerdict => ({
    ok: false,
    reason,
    code,
    productName: promo.productName,
    days: promo.days,
  });
  if (!promo.enabled) return refuse("disabled");
  if (row.expired) return refuse("expired");
  if (promo.productId !== null && promo.productId !== input.productId) return refuse("other_product");
  if (promo.days !== null && !promo.days.includes(input.days)) return refuse("other_duration");
  if (promo.maxUses !== null || promo.maxUsesPerBuyer !== null) {
    const [uses] = await db<{ total: string; mine: string }[]>`
      select count(*) as total, count(*) filter (where o.user_id = ${input.userId}) as mine
      from orders o
      where o.promo_code_id = ${promo.id} and o.id <> ${input.excludeOrderId ?? 0} and ${holdsAUse(db)}`;
    if (promo.maxUses !== null && Number(uses!.total) >= promo.maxUses) return refuse("used_up");
    if (promo.maxUsesPerBuyer !== null && Number(uses!.mine) >= promo.maxUsesPerBuyer) return refuse("used_by_you");
  }
  return { ok: true, promo: { id: promo.id, code: promo.code, discount: promo.discount } };
}

/** Durations as a phrase: «7 дней», «7 и 30 дней», «1, 7 и 30 дней». */
export function daysList(days: readonly DurationDays[]): string {
  const last = days.at(-1)!;
  return days.length === 1 ? daysLabel(last) : `${days.slice(0, -1).join(", ")} и ${daysLabel(last)}`;
}

export function createPromos(deps: ShopDeps) {
  const { sql } = deps;

  const columns = (input: PromoInput) => ({
    percent: input.discount.percent,
    rub: input.discount.rub,
    product_id: input.productId,
    days: input.days === null ? null : [...new Set(input.days)].sort((a, b) => a - b),
    max_uses: input.maxUses,
    max_uses_per_buyer: input.maxUsesPerBuyer,
    valid_until: input.validUntil,
    enabled: input.enabled,
  });

  /** A foreign key to a product that is gone, or a code taken: the owner's words instead of the driver's. */
  function refusal(error: unknown, code: string): unknown {
    if (pgCode(error) === "23505") return conflict(`Промокод ${code} уже есть`, "code");
    if (pgCode(error) === "23503") return notFound("Такого продукта нет", "productId");
    return error;
  }

  async function byId(id: number): Promise<PromoCode | null> {
    const [row] = await sql<PromoRow[]>`
      select ${promoColumns(sql)}
      from promo_codes pc left join products p on p.id = pc.product_id where pc.id = ${id}`;
    return row ? toPromo(row) : null;
  }

  async function byCode(text: string): Promise<PromoCode | null> {
    const code = canonicalCode(text);
    if (code === null) return null;
    const [row] = await sql<PromoRow[]>`
      select ${promoColumns(sql)}
      from promo_codes pc left join products p on p.id = pc.product_id where pc.code = ${code}`;
    return row ? toPromo(row) : null;
  }

  async function create(codeText: string, input: PromoInput): Promise<PromoCode> {
    const code = canonicalCode(codeText);
    if (code === null) throw invalid(codeProblem(codeText)!, "code");
    validatePromo(input);
    const c = columns(input);
    const rows = await sql<{ id: string }[]>`
      insert into promo_codes (code, percent, rub, product_id, days, max_uses, max_uses_per_buyer, valid_until,
                               enabled)
      values (${code}, ${c.percent}, ${c.rub}, ${c.product_id}, ${c.days}, ${c.max_uses}, ${c.max_uses_per_buyer},
              ${c.valid_until}, ${c.enabled})
      returning id`.catch((error: unknown) => {
      throw refusal(error, code);
    });
    log.info("promo code created", { code });
    return (await byId(Number(rows[0]!.id)))!;
  }

  /**
   * Changes a code's settings. Orders already placed with it keep the price they were given; the next buyer to
   * apply it gets the new terms. Waits for any order being placed with the code right now (its row lock).
   */
  async function update(id: number, input: PromoInput): Promise<PromoCode> {
    validatePromo(input);
    const c = columns(input);
    let rows: { code: string }[];
    try {
      rows = await sql<{ code: string }[]>`
        update promo_codes set percent = ${c.percent}, rub = ${c.rub}, product_id = ${c.product_id},
          days = ${c.days}, max_uses = ${c.max_uses}, max_uses_per_buyer = ${c.max_uses_per_buyer},
          valid_until = ${c.valid_until}, enabled = ${c.enabled}, updated_at = now()
        where id = ${id} returning code`;
    } catch (error) {
      throw refusal(error, String(id));
    }
    if (rows.length === 0) throw notFound("Такого промокода нет");
    log.info("promo code changed", { code: rows[0]!.code });
    return (await byId(id))!;
  }

  /** Switches a code off (or on again). Orders that already hold it can still be paid at their price. */
  async function setEnabled(id: number, enabled: boolean): Promise<PromoCode> {
    const rows = await sql<{ code: string }[]>`
      update promo_codes set enabled = ${enabled}, updated_at = now() where id = ${id} returning code`;
    if (rows.length === 0) throw notFound("Такого промокода нет");
    log.info(enabled ? "promo code switched on" : "promo code switched off", { code: rows[0]!.code });
    return (await byId(id))!;
  }

  /** Every code, newest first, with its uses and revenue (a shop has dozens of codes, not thousands). */
  async function list(): Promise<PromoListItem[]> {
    const paid = sql([...PAID_STATUSES]);
    const rows = await sql<
      (PromoRow & {
        used: string;
        held: string;
        revenue_rub: string;
        revenue_stars: string;
        discount_rub: string;
        expired: boolean;
      })[]
    >`
      select ${promoColumns(sql)}, ${expiredSql(sql)} as expired,
        count(o.id) filter (where o.status in ${paid}) as used,
        count(o.id) filter (where o.status = 'pending' and o.reserved_until > now()) as held,
        coalesce(sum(o.paid_rub) filter (where o.status in ${paid} and not o.test), 0) as revenue_rub,
        coalesce(sum(o.paid_stars) filter (where o.status in ${paid} and not o.test), 0) as revenue_stars,
        coalesce(sum(o.discount_rub) filter (where o.status in ${paid} and not o.test), 0)
          as discount_rub
      from promo_codes pc
      left join products p on p.id = pc.product_id
      left join orders o on o.promo_code_id = pc.id
      group by pc.id, p.name
      order by pc.id desc`;
    return rows.map((r) => ({
      ...toPromo(r),
      used: Number(r.used),
      held: Number(r.held),
      revenueRub: Number(r.revenue_rub),
      revenueStars: Number(r.revenue_stars),
      discountRub: Number(r.discount_rub),
      expired: r.expired,
    }));
  }

  /**
   * Whether a code applies to a purchase, as a preview for the buyer (nothing is locked or taken: placing the order
   * checks again, under the code's lock).
   */
  function check(input: { code: string; userId: number; productId: number; days: DurationDays }) {
    return applyPromo(sql, { ...input, lock: false });
  }

  return { byId, byCode, create, update, setEnabled, list, check };
}

export type Promos = ReturnType<typeof createPromos>;
