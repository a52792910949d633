import { invalidateCatalogue } from "../../cache/catalogue.ts";
import type { Tx } from "../../db/client.ts";
import { type DurationDays, isDuration } from "../../lib/durations.ts";
import { log } from "../../lib/log.ts";
import type { ShopDeps } from "../deps.ts";
import { invalid } from "../errors.ts";
import { allocateKey } from "../keys/keys.ts";
import type { Price } from "../promos/discount.ts";
import { type PromoVerdict, priceAfterCode } from "../promos/promos.ts";

export type PromoRefused = Extract<PromoVerdict, { ok: false }>;

export type OrderStatus = "pending" | "paid" | "delivered" | "failed" | "expired" | "paid_no_stock";

/** Who paid an order: AnyPay, Telegram Stars, a promo code that covered all of it, or an admin's test button. */
export type PaidBy = "anypay" | "telegram_stars" | "promo" | "test";

/** What an order is for: a key from stock, or more days on a key the buyer already owns. */
export type OrderKind = "purchase" | "renewal";

export type Order = {
  id: number;
  kind: OrderKind;
  /** The key a renewal renews; null for a purchase (its key points at the order instead). */
  keyId: number | null;
  userId: number;
  productId: number;
  productName: string;
  days: DurationDays;
  /** What the buyer is asked to pay in roubles, after the promo code (0: the code pays it all). */
  amountRub: number;
  /** What the code took off; `amountRub + discountRub` is the duration's price when the order was placed. */
  discountRub: number;
  listRub: number;
  /** The same in Telegram Stars; null when the duration has no Stars price. */
  stars: number | null;
  /** The promo code applied, as the buyer typed it (canonical), and its id. */
  promoCode: string | null;
  promoCodeId: number | null;
  status: OrderStatus;
  createdAt: Date;
  reservedUntil: Date;
  paidAt: Date | null;
  deliveredAt: Date | null;
  test: boolean;
  /** Who paid it (null until paid). */
  paidBy: PaidBy | null;
  /** What was actually charged (null until paid): roubles through AnyPay, Stars through Telegram. */
  paidRub: number | null;
  paidStars: number | null;
  /**
   * The payment that paid it: AnyPay's transaction id, Telegram's telegram_payment_charge_id, "promo:<id>" for an
   * order a code paid in full, or "test:<id>" for a test payment.
   */
  transactionId: string | null;
  /** Why it was closed without a key (an admin's note), for status `failed`. */
  failure: string | null;
};

export type OrderRow = {
  id: string;
  kind: OrderKind;
  key_id: string | null;
  user_id: string;
  product_id: string;
  product_name: string;
  days: number;
  amount_rub: number;
  discount_rub: number;
  stars: number | null;
  promo_code: string | null;
  promo_code_id: string | null;
  status: OrderStatus;
  created_at: Date;
  reserved_until: Date;
  paid_at: Date | null;
  delivered_at: Date | null;
  test: boolean;
  provider: PaidBy | null;
  paid_rub: number | null;
  paid_stars: number | null;
  transaction_id: string | null;
  failure: string | null;
};

export function toOrder(r: OrderRow): Order {
  return {
    id: Number(r.id),
    kind: r.kind,
    keyId: r.key_id === null ? null : Number(r.key_id),
    userId: Number(r.user_id),
    productId: Number(r.product_id),
    productName: r.product_name,
    days: r.days as DurationDays,
    amountRub: r.amount_rub,
    discountRub: r.discount_rub,
    listRub: r.amount_rub + r.discount_rub,
    stars: r.stars,
    promoCode: r.promo_code,
    promoCodeId: r.promo_code_id === null ? null : Number(r.promo_code_id),
    status: r.status,
    createdAt: r.created_at,
    reservedUntil: r.reserved_until,
    paidAt: r.paid_at,
    deliveredAt: r.delivered_at,
    test: r.test,
    paidBy: r.provider,
    paidRub: r.paid_rub,
    paidStars: r.paid_stars,
    transactionId: r.transaction_id,
    failure: r.failure,
  };
}

export type PlaceOrderResult =
  /** A new order with a key reserved for it, or the buyer's own unpaid order for the same thing. */
  | { kind: "placed" | "existing"; order: Order }
  | { kind: "out_of_stock" }
  /** The product is archived or the duration is no longer for sale. */
  | { kind: "unavailable" }
  /** The price (after the code, if any) changed since the buyer saw it: show the new one and ask again. */
  | { kind: "price_changed"; rub: number }
  /** The promo code does not apply (any more): nothing was placed, and an order the buyer had is as it was. */
  | { kind: "promo_refused"; verdict: PromoRefused };

/** Where a key for an order comes from. "wait" is plain FOR UPDATE, kept only to measure SKIP LOCKED against. */
export type AllocationStrategy = "skip_locked" | "wait";

/** The first key of place()'s advisory lock, so it never collides with another use of two-key advisory locks. */
const PLACE_ORDER_LOCK = 0x4f524452; // "ORDR"

/** Plain FOR UPDATE: concurrent buyers queue behind the same first row. Only for the allocation benchmark. */
async function allocateKeyWaiting(tx: Tx, productId: number, days: DurationDays) {
  const [row] = await tx<{ id: string; key: string }[]>`
    select id, key from keys
    where product_id = ${productId} and days = ${days} and state = 'available'
    order by id
    limit 1
    for update`;
  return row ? { id: Number(row.id), key: row.key } : null;
}

/**
 * Orders: what one is, finding it, and placing one (a key reserved for the buyer). The rest of the entity sits
 * beside this file — what a payment does to an order (payments.ts), orders waiting for payment or for a key
 * (waiting.ts), what needs the owner (attention.ts), the panel's lists (lists.ts) and sales figures (sales.ts) —
 * and shop/index.ts assembles them into one service.
 */
export function createOrders(deps: ShopDeps, options: { allocation?: AllocationStrategy } = {}) {
  const { sql, config } = deps;
  const allocate = options.allocation === "wait" ? allocateKeyWaiting : allocateKey;

  async function byId(id: number): Promise<Order | null> {
    const [row] = await sql<OrderRow[]>`
      select o.*, p.name as product_name from orders o join products p on p.id = o.product_id where o.id = ${id}`;
    return row ? toOrder(row) : null;
  }

  /**
   * Confirming a purchase: creates the order and reserves one key for it in one transaction (SKIP LOCKED, so
   * concurrent buyers never wait on each other or get the same key), at the duration's price less the promo code's
   * discount. The code is checked and its use taken in the same transaction, under the code's row lock, so its
   * limits hold however many buyers apply it at once; the use is held while the reservation lasts and counted for
   * good once the order is paid. A buyer who already has an unpaid order for the same product and duration gets that
   * order back instead of holding a second key (or, if it was for another price or code, it ends and its key moves
   * to the new one).
   */
  async function place(input: {
    userId: number;
    productId: number;
    days: number;
    /** The price the buyer saw, after the code; a different current price is reported instead of charging it. */
    expectedRub?: number;
    /** The promo code the buyer typed (any case), if any. */
    promoCode?: string | null | undefined;
  }): Promise<PlaceOrderResult> {
    if (!isDuration(input.days)) throw invalid("Неверная длительность", "days");
    const days = input.days;
    const result = await sql.begin(async (tx): Promise<PlaceOrderResult> => {
      // Concurrent confirms of one buyer for one offer (a double press, a second device, any future checkout) take
      // turns here, so the second one sees the first's order below instead of reserving a second key. A lock, not a
      // unique index: a pending order past its reservation stays 'pending' until the expiry job gets to it.
      await tx`
        select pg_advisory_xact_lock(${PLACE_ORDER_LOCK}, hashtext(${`${input.userId}:${input.productId}:${days}`}))`;
      const [offer] = await tx<{ rub: number; stars: number | null; archived: boolean }[]>`
        select pr.rub, pr.stars, p.archived_at is not null as archived
        from products p join prices pr on pr.product_id = p.id and pr.days = ${days}
        where p.id = ${input.productId}`;
      if (!offer || offer.archived || offer.rub <= 0) return { kind: "unavailable" };
      // The buyer's unpaid order, even one whose reservation ran out a moment ago and that the expiry job has not
      // reached yet (it still holds its key). Locked, so a payment or the expiry job being applied to it right now
      // finishes first — and then it is no longer pending, and is left alone here.
      const [existing] = await tx<OrderRow[]>`
        select o.*, p.name as product_name from orders o join products p on p.id = o.product_id
        where o.user_id = ${input.userId} and o.product_id = ${input.productId} and o.days = ${days}
          and o.status = 'pending' and o.kind = 'purchase'
        order by o.id desc limit 1
        for update of o`;
      const list: Price = { rub: offer.rub, stars: offer.stars };
      const priced = await priceAfterCode(tx, {
        code: input.promoCode,
        userId: input.userId,
        productId: input.productId,
        days,
        list,
        replacing: existing ? Number(existing.id) : null,
      });
      if (!priced.ok) return { kind: "promo_refused", verdict: priced };
      const { promo, price } = priced;
      if (input.expectedRub !== undefined && input.expectedRub !== price.rub) {
        return { kind: "price_changed", rub: price.rub };
      }
      let key: { id: number } | null = null;
      if (existing) {
        const [held] = await tx<{ id: string }[]>`
          select id from keys where order_id = ${existing.id} and state = 'reserved' for update`;
        if (held) key = { id: Number(held.id) };
        const same =
          existing.amount_rub === price.rub &&
          existing.discount_rub === list.rub - price.rub &&
          existing.stars === price.stars &&
          (existing.promo_code_id === null ? null : Number(existing.promo_code_id)) === (promo?.id ?? null);
        if (key && same) {
          // Confirming again is the buyer still paying: the reservation runs from now, the payment link stays.
          const [renewed] = await tx<OrderRow[]>`
            update orders
            set reserved_until = greatest(reserved_until, now() + make_interval(mins => ${config.reservationMinutes})),
                updated_at = now()
            where id = ${existing.id}
            returning *, ${existing.product_name}::text as product_name`;
          return { kind: "existing", order: toOrder(renewed!) };
        }
        // The price or the code changed since that order was placed and the buyer confirmed the new terms: that
        // order ends (and with it the code's use it held) and its key moves to the new order, so one buyer never
        // holds two keys for the same purchase.
        await tx`update orders set status = 'expired', updated_at = now() where id = ${existing.id}`;
        await tx`
          insert into user_events (user_id, kind, detail)
          values (${input.userId}, 'order_replaced', ${tx.json({ orderId: Number(existing.id), newRub: price.rub })})`;
      }
      key ??= await allocate(tx, input.productId, days);
      if (!key) return { kind: "out_of_stock" };
      const [row] = await tx<OrderRow[]>`
        insert into orders (user_id, product_id, days, amount_rub, discount_rub, stars, promo_code_id, promo_code,
                            reserved_until)
        values (${input.userId}, ${input.productId}, ${days}, ${price.rub}, ${list.rub - price.rub}, ${price.stars},
                ${promo?.id ?? null}, ${promo?.code ?? null},
                now() + make_interval(mins => ${config.reservationMinutes}))
        returning *, (select name from products where id = ${input.productId}) as product_name`;
      await tx`update keys set state = 'reserved', order_id = ${row!.id} where id = ${key.id}`;
      const placed = {
        orderId: Number(row!.id),
        productId: input.productId,
        days,
        rub: price.rub,
        ...(promo ? { listRub: list.rub, promoCode: promo.code } : {}),
      };
      await tx`insert into user_events (user_id, kind, detail) values (${input.userId}, 'order_placed', ${tx.json(placed)})`;
      return { kind: "placed", order: toOrder(row!) };
    });
    if (result.kind === "placed") {
      await invalidateCatalogue(deps);
      log.info("order placed", {
        orderId: result.order.id,
        productId: input.productId,
        days,
        rub: result.order.amountRub,
        ...(result.order.promoCode ? { listRub: result.order.listRub, promoCode: result.order.promoCode } : {}),
      });
    }
    return result;
  }

  return {
    /** How long a confirmed order holds its key for the buyer to pay (RESERVATION_MINUTES). */
    reservationMinutes: config.reservationMinutes,
    byId,
    place,
  };
}
