import { invalidateCatalogue } from "../../cache/catalogue.ts";
import type { Tx } from "../../db/client.ts";
import { type DurationDays, isDuration } from "../../lib/durations.ts";
import { maskKey } from "../../lib/keys.ts";
import { log } from "../../lib/log.ts";
import { plainText } from "../../lib/text.ts";
import type { ShopDeps } from "../deps.ts";
import { invalid, pgCode } from "../errors.ts";
import { allocateKey } from "../keys/keys.ts";
import { type Deliveries, enqueueDelivery } from "./deliveries.ts";
import {
  createRefusedNotifications,
  REFUSED_WINDOW_DAYS,
  type RefusedNotification,
  type RefusedNotifications,
} from "./refused-notifications.ts";

export type OrderStatus = "pending" | "paid" | "delivered" | "failed" | "expired" | "paid_no_stock";

export type Order = {
  id: number;
  userId: number;
  productId: number;
  productName: string;
  days: DurationDays;
  amountRub: number;
  status: OrderStatus;
  createdAt: Date;
  reservedUntil: Date;
  paidAt: Date | null;
  deliveredAt: Date | null;
  test: boolean;
  /** The payment that paid it: AnyPay's transaction id, or "test:<id>" for a test payment. */
  transactionId: string | null;
  /** Why it was closed without a key (an admin's note), for status `failed`. */
  failure: string | null;
};

type OrderRow = {
  id: string;
  user_id: string;
  product_id: string;
  product_name: string;
  days: number;
  amount_rub: number;
  status: OrderStatus;
  created_at: Date;
  reserved_until: Date;
  paid_at: Date | null;
  delivered_at: Date | null;
  test: boolean;
  transaction_id: string | null;
  failure: string | null;
};

export function toOrder(r: OrderRow): Order {
  return {
    id: Number(r.id),
    userId: Number(r.user_id),
    productId: Number(r.product_id),
    productName: r.product_name,
    days: r.days as DurationDays,
    amountRub: r.amount_rub,
    status: r.status,
    createdAt: r.created_at,
    reservedUntil: r.reserved_until,
    paidAt: r.paid_at,
    deliveredAt: r.delivered_at,
    test: r.test,
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
  /** The price changed since the buyer saw the card: show the new one and ask again. */
  | { kind: "price_changed"; rub: number };

/** Where a key for an order comes from. "wait" is plain FOR UPDATE, kept only to measure SKIP LOCKED against. */
export type AllocationStrategy = "skip_locked" | "wait";

/** A payment reported by AnyPay (already verified) or by an admin's test button. */
export type IncomingPayment = {
  orderId: number;
  /** AnyPay's transaction_id, or "test:<order id>": one transaction is applied once, however often it is reported. */
  transactionId: string;
  /** As received, e.g. "299" or "299.00"; the caller has checked it equals the order's amount. */
  amount: string;
  currency: string;
  method?: string | null;
  email?: string | null;
  profit?: string | null;
  test: boolean;
  source: "anypay" | "test";
};

export type PaymentOutcome =
  /** Paid now: a key is sold to the buyer and its delivery queued. `replacedKey`: the reservation had lapsed and
   * the key came from stock. */
  | { kind: "paid"; order: Order; replacedKey: boolean }
  /** Paid now, but the reservation had lapsed and no key is left: the admins must be told. */
  | { kind: "paid_no_stock"; order: Order }
  /** This very transaction was applied before (AnyPay retrying, or copies racing): nothing more to do. */
  | { kind: "already"; order: Order }
  /** A second, different payment for an order that was already paid: recorded for the admins to refund. */
  | { kind: "duplicate"; order: Order }
  | { kind: "not_found" }
  /** The transaction id was already applied to another order: never apply one payment twice. */
  | { kind: "transaction_conflict" };

/** A row of the payments ledger, as the panel shows it. Amounts are decimal strings ("1999.00"). */
export type PaymentRecord = {
  transactionId: string;
  amount: string;
  currency: string;
  method: string | null;
  test: boolean;
  source: "anypay" | "test";
  outcome: "applied" | "no_stock" | "duplicate";
  receivedAt: Date;
};

/** The longest note kept when an admin closes an order. */
export const MAX_CLOSING_NOTE = 500;

/**
 * An admin's note as it will be stored: trimmed, without control characters (Postgres refuses a NUL in text, and
 * nothing else invisible belongs in a note) — line breaks and tabs stay.
 */
export function closingNote(note: string): string {
  return plainText(note);
}

/** A paid order not delivered after this long is flagged: normally a purchase reaches the buyer within seconds. */
export const LATE_DELIVERY_MINUTES = 10;
/** How long a second payment for one order stays on the owner's list (to be refunded in AnyPay). */
export const DUPLICATE_WINDOW_DAYS = 30;

/** What needs the owner (see `attention()`). */
export type Attention = {
  paidNoStock: number;
  undelivered: number;
  late: number;
  /** Newest first, at most 20. */
  duplicatePayments: { orderId: number; receivedAt: Date }[];
  /** AnyPay's notifications refused in the last REFUSED_WINDOW_DAYS, newest first, at most 10. */
  refusedNotifications: RefusedNotification[];
};

/**
 * The number on the Заказы tab: orders that are stuck until someone acts (or Telegram recovers). Second payments
 * are not counted: they stay listed for DUPLICATE_WINDOW_DAYS whatever the owner did, and would keep the badge lit.
 */
export function needsOwner(a: Pick<Attention, "paidNoStock" | "undelivered" | "late">): number {
  return a.paidNoStock + a.undelivered + a.late;
}

/**
 * Orders a payment has already been applied to, whatever became of them since (`failed` is a paid order an admin
 * closed): a new payment for one of these is a duplicate to refund. Not the revenue statuses of orders/lists.ts.
 */
const ALREADY_PAID_STATUSES: readonly OrderStatus[] = ["paid", "delivered", "paid_no_stock", "failed"];

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

/** A decimal as AnyPay sends it, or null when it is not one (lenient: only for fields kept for the record). */
function decimalOrNull(text: string | null | undefined): string | null {
  return text && /^-?\d{1,10}(\.\d{1,8})?$/.test(text) ? text : null;
}

export function createOrders(
  deps: ShopDeps,
  options: { deliveries: Deliveries; refused?: RefusedNotifications; allocation?: AllocationStrategy },
) {
  const { sql, config } = deps;
  const { deliveries } = options;
  const refused = options.refused ?? createRefusedNotifications(deps);
  const allocate = options.allocation === "wait" ? allocateKeyWaiting : allocateKey;

  async function byId(id: number): Promise<Order | null> {
    const [row] = await sql<OrderRow[]>`
      select o.*, p.name as product_name from orders o join products p on p.id = o.product_id where o.id = ${id}`;
    return row ? toOrder(row) : null;
  }

  /**
   * Confirming a purchase: creates the order and reserves one key for it in one transaction (SKIP LOCKED, so
   * concurrent buyers never wait on each other or get the same key). A buyer who already has an unpaid order for
   * the same product and duration gets that order back instead of holding a second key.
   */
  async function place(input: {
    userId: number;
    productId: number;
    days: number;
    /** The price the buyer saw; a different current price is reported instead of charging it silently. */
    expectedRub?: number;
  }): Promise<PlaceOrderResult> {
    if (!isDuration(input.days)) throw invalid("Неверная длительность", "days");
    const days = input.days;
    const result = await sql.begin(async (tx): Promise<PlaceOrderResult> => {
      // Concurrent confirms of one buyer for one offer (a double press, a second device, any future checkout) take
      // turns here, so the second one sees the first's order below instead of reserving a second key. A lock, not a
      // unique index: a pending order past its reservation stays 'pending' until the expiry job gets to it.
      await tx`
        select pg_advisory_xact_lock(${PLACE_ORDER_LOCK}, hashtext(${`${input.userId}:${input.productId}:${days}`}))`;
      const [offer] = await tx<{ rub: number; archived: boolean }[]>`
        select pr.rub, p.archived_at is not null as archived
        from products p join prices pr on pr.product_id = p.id and pr.days = ${days}
        where p.id = ${input.productId}`;
      if (!offer || offer.archived || offer.rub <= 0) return { kind: "unavailable" };
      if (input.expectedRub !== undefined && input.expectedRub !== offer.rub) {
        return { kind: "price_changed", rub: offer.rub };
      }
      // The buyer's unpaid order, even one whose reservation ran out a moment ago and that the expiry job has not
      // reached yet (it still holds its key). Locked, so a payment or the expiry job being applied to it right now
      // finishes first — and then it is no longer pending, and is left alone here.
      const [existing] = await tx<OrderRow[]>`
        select o.*, p.name as product_name from orders o join products p on p.id = o.product_id
        where o.user_id = ${input.userId} and o.product_id = ${input.productId} and o.days = ${days}
          and o.status = 'pending'
        order by o.id desc limit 1
        for update of o`;
      let key: { id: number } | null = null;
      if (existing) {
        const [held] = await tx<{ id: string }[]>`
          select id from keys where order_id = ${existing.id} and state = 'reserved' for update`;
        if (held) key = { id: Number(held.id) };
        if (key && existing.amount_rub === offer.rub) {
          // Confirming again is the buyer still paying: the reservation runs from now, the payment link stays.
          const [renewed] = await tx<OrderRow[]>`
            update orders
            set reserved_until = greatest(reserved_until, now() + make_interval(mins => ${config.reservationMinutes})),
                updated_at = now()
            where id = ${existing.id}
            returning *, ${existing.product_name}::text as product_name`;
          return { kind: "existing", order: toOrder(renewed!) };
        }
        // The price changed since that order was placed and the buyer confirmed the new one: that order ends and its
        // key moves to the new order, so one buyer never holds two keys for the same purchase.
        await tx`update orders set status = 'expired', updated_at = now() where id = ${existing.id}`;
        await tx`
          insert into user_events (user_id, kind, detail)
          values (${input.userId}, 'order_replaced', ${tx.json({ orderId: Number(existing.id), newRub: offer.rub })})`;
      }
      key ??= await allocate(tx, input.productId, days);
      if (!key) return { kind: "out_of_stock" };
      const [row] = await tx<OrderRow[]>`
        insert into orders (user_id, product_id, days, amount_rub, reserved_until)
        values (${input.userId}, ${input.productId}, ${days}, ${offer.rub},
                now() + make_interval(mins => ${config.reservationMinutes}))
        returning *, (select name from products where id = ${input.productId}) as product_name`;
      await tx`update keys set state = 'reserved', order_id = ${row!.id} where id = ${key.id}`;
      await tx`
        insert into user_events (user_id, kind, detail)
        values (${input.userId}, 'order_placed', ${tx.json({ orderId: Number(row!.id), productId: input.productId, days, rub: offer.rub })})`;
      return { kind: "placed", order: toOrder(row!) };
    });
    if (result.kind === "placed") {
      await invalidateCatalogue(deps);
      log.info("order placed", {
        orderId: result.order.id,
        productId: input.productId,
        days,
        rub: result.order.amountRub,
      });
    }
    return result;
  }

  /** Sells a key to a paid order inside `tx`; the order row is locked by the caller. */
  async function sellKey(tx: Tx, order: Order, keyId: number): Promise<void> {
    await tx`
      update keys set state = 'sold', order_id = ${order.id}, buyer_id = ${order.userId}, sold_at = now()
      where id = ${keyId}`;
    await enqueueDelivery(tx, order.id, order.userId);
  }

  async function recordPayment(
    tx: Tx,
    order: Order,
    payment: IncomingPayment,
    outcome: "applied" | "no_stock" | "duplicate",
  ): Promise<void> {
    await tx`
      insert into payments (transaction_id, order_id, user_id, amount, currency, method, email, profit, test, source,
                            outcome)
      values (${payment.transactionId}, ${order.id}, ${order.userId}, ${payment.amount}, ${payment.currency},
              ${payment.method?.slice(0, 64) ?? null}, ${payment.email?.slice(0, 254) ?? null},
              ${decimalOrNull(payment.profit)}, ${payment.test}, ${payment.source}, ${outcome})`;
  }

  /**
   * Applies a verified payment to its order, in one transaction: the order becomes paid and its reserved key sold
   * to the buyer, with the delivery queued in the outbox. If the reservation had lapsed and its key went to someone
   * else, another key is taken from stock; if none is left the order becomes `paid_no_stock` — recorded, never
   * dropped. The order row is locked first, so repeated or concurrent reports of one payment apply it exactly once.
   */
  async function markPaid(payment: IncomingPayment): Promise<PaymentOutcome> {
    let outcome: PaymentOutcome;
    try {
      outcome = await sql.begin(async (tx): Promise<PaymentOutcome> => {
        const [row] = await tx<OrderRow[]>`
          select o.*, p.name as product_name from orders o join products p on p.id = o.product_id
          where o.id = ${payment.orderId} for update of o`;
        if (!row) return { kind: "not_found" };
        const order = toOrder(row);
        const [seen] = await tx<{ order_id: string }[]>`
          select order_id from payments where transaction_id = ${payment.transactionId}`;
        if (seen) {
          return Number(seen.order_id) === order.id ? { kind: "already", order } : { kind: "transaction_conflict" };
        }
        const event = {
          orderId: order.id,
          amount: payment.amount,
          currency: payment.currency,
          transactionId: payment.transactionId,
          method: payment.method ?? null,
          test: payment.test,
        };

        if (ALREADY_PAID_STATUSES.includes(order.status)) {
          await recordPayment(tx, order, payment, "duplicate");
          await tx`
            insert into user_events (user_id, kind, detail)
            values (${order.userId}, 'payment_duplicate', ${tx.json({ ...event, orderStatus: order.status })})`;
          return { kind: "duplicate", order };
        }

        // pending (reservation possibly past its time but not yet expired by the job) or expired.
        const [reserved] = await tx<{ id: string }[]>`
          select id from keys where order_id = ${order.id} and state = 'reserved' for update`;
        const key = reserved ? { id: Number(reserved.id) } : await allocate(tx, order.productId, order.days);
        const status: OrderStatus = key ? "paid" : "paid_no_stock";
        const [updated] = await tx<OrderRow[]>`
          update orders set status = ${status}, paid_at = now(), transaction_id = ${payment.transactionId},
            payment_method = ${payment.method?.slice(0, 64) ?? null}, test = ${payment.test}, updated_at = now()
          where id = ${order.id}
          returning *, ${order.productName}::text as product_name`;
        const paid = toOrder(updated!);
        if (key) await sellKey(tx, paid, key.id);
        await recordPayment(tx, paid, payment, key ? "applied" : "no_stock");
        await tx`
          insert into user_events (user_id, kind, detail)
          values (${order.userId}, ${key ? "order_paid" : "order_paid_no_stock"},
                  ${tx.json({ ...event, reservationLapsed: order.status === "expired" || !reserved })})`;
        return key ? { kind: "paid", order: paid, replacedKey: !reserved } : { kind: "paid_no_stock", order: paid };
      });
    } catch (error) {
      // Two different orders claiming one transaction id at the same moment: the unique index lets one win.
      if (pgCode(error) === "23505") return { kind: "transaction_conflict" };
      throw error;
    }

    if (outcome.kind === "paid") {
      deliveries.wake();
      if (outcome.replacedKey) await invalidateCatalogue(deps);
      log.info("order paid", {
        orderId: outcome.order.id,
        transactionId: payment.transactionId,
        test: payment.test,
        replacedKey: outcome.replacedKey,
      });
    } else if (outcome.kind === "paid_no_stock") {
      log.error("order paid but no key is left: paid_no_stock", {
        orderId: outcome.order.id,
        userId: outcome.order.userId,
        product: outcome.order.productName,
        days: outcome.order.days,
        transactionId: payment.transactionId,
      });
    } else if (outcome.kind === "duplicate") {
      log.error("second payment for an order that was already paid: refund or settle by hand", {
        orderId: outcome.order.id,
        userId: outcome.order.userId,
        transactionId: payment.transactionId,
        amount: payment.amount,
      });
    }
    return outcome;
  }

  /**
   * Expires unpaid orders whose reservation has run out and puts their keys back on sale. SKIP LOCKED leaves alone
   * an order that a payment is being applied to right now. Returns how many expired.
   */
  async function expireDue(limit = 500): Promise<number> {
    const expired = await sql.begin(async (tx) => {
      const rows = await tx<{ id: string; user_id: string }[]>`
        update orders o set status = 'expired', updated_at = now()
        where o.id in (
          select id from orders
          where status = 'pending' and reserved_until <= now()
          order by reserved_until
          limit ${limit}
          for update skip locked)
        returning o.id, o.user_id`;
      if (rows.length === 0) return rows;
      const ids = rows.map((r) => r.id);
      await tx`
        update keys set state = 'available', order_id = null
        where order_id = any(${ids}::bigint[]) and state = 'reserved'`;
      await tx`
        insert into user_events (user_id, kind, detail)
        select t.user_id, 'order_expired', jsonb_build_object('orderId', t.order_id)
        from unnest(${rows.map((r) => r.user_id)}::bigint[], ${ids}::bigint[]) as t(user_id, order_id)`;
      return rows;
    });
    if (expired.length > 0) {
      await invalidateCatalogue(deps);
      log.info("unpaid orders expired", { count: expired.length });
    }
    return expired.length;
  }

  /**
   * Serves orders that were paid while no key was left (`paid_no_stock`), oldest first, as soon as keys of their
   * product and duration are back in stock. Returns how many got a key.
   */
  async function fulfilWaiting(limit = 50): Promise<number> {
    const waiting = await sql<{ id: string }[]>`
      select id from orders where status = 'paid_no_stock' order by paid_at, id limit ${limit}`;
    let fulfilled = 0;
    for (const { id } of waiting) {
      const done = await sql.begin(async (tx) => {
        const [row] = await tx<OrderRow[]>`
          select o.*, p.name as product_name from orders o join products p on p.id = o.product_id
          where o.id = ${id} and o.status = 'paid_no_stock' for update of o skip locked`;
        if (!row) return false;
        const order = toOrder(row);
        const key = await allocate(tx, order.productId, order.days);
        if (!key) return false;
        await tx`update orders set status = 'paid', updated_at = now() where id = ${order.id}`;
        await sellKey(tx, order, key.id);
        await tx`
          insert into user_events (user_id, kind, detail)
          values (${order.userId}, 'order_fulfilled', ${tx.json({ orderId: order.id, key: maskKey(key.key) })})`;
        return true;
      });
      if (done) {
        fulfilled++;
        log.info("paid_no_stock order served from new stock", { orderId: Number(id) });
      }
    }
    if (fulfilled > 0) {
      deliveries.wake();
      await invalidateCatalogue(deps);
    }
    return fulfilled;
  }

  /**
   * An admin settled a `paid_no_stock` order outside the shop (refunded it, say): close it so new stock is not
   * sent to it. Returns false when the order is not waiting for a key.
   */
  async function closeUnfulfilled(orderId: number, note: string): Promise<boolean> {
    const text = closingNote(note).slice(0, MAX_CLOSING_NOTE) || "closed by an admin";
    return await sql.begin(async (tx) => {
      const [row] = await tx<{ user_id: string }[]>`
        update orders set status = 'failed', failure = ${text}, updated_at = now()
        where id = ${orderId} and status = 'paid_no_stock' returning user_id`;
      if (!row) return false;
      await tx`
        insert into user_events (user_id, kind, detail)
        values (${row.user_id}, 'order_closed', ${tx.json({ orderId, note: text })})`;
      return true;
    });
  }

  /** Every payment recorded for an order (normally one; more means it was paid twice), oldest first. */
  async function paymentsOf(orderId: number): Promise<PaymentRecord[]> {
    const rows = await sql<
      {
        transaction_id: string;
        amount: string;
        currency: string;
        method: string | null;
        test: boolean;
        source: "anypay" | "test";
        outcome: PaymentRecord["outcome"];
        received_at: Date;
      }[]
    >`
      select transaction_id, amount, currency, method, test, source, outcome, received_at
      from payments where order_id = ${orderId} order by id`;
    return rows.map((r) => ({
      transactionId: r.transaction_id,
      amount: r.amount,
      currency: r.currency,
      method: r.method,
      test: r.test,
      source: r.source,
      outcome: r.outcome,
      receivedAt: r.received_at,
    }));
  }

  /**
   * What needs the owner, for the panel's badge and notices: paid orders without a key, deliveries that stopped
   * (the buyer blocked the bot, or Telegram failed for about a day), paid orders still not delivered after
   * LATE_DELIVERY_MINUTES (Telegram trouble: the job keeps retrying), and the second payments of the last
   * DUPLICATE_WINDOW_DAYS (to refund in AnyPay). Every count is read from a partial index.
   */
  async function stuckCounts(): Promise<Pick<Attention, "paidNoStock" | "undelivered" | "late">> {
    const [counts] = await sql<{ paid_no_stock: string; undelivered: string; late: string }[]>`
      select
        (select count(*) from orders where status = 'paid_no_stock') as paid_no_stock,
        (select count(*) from deliveries where status in ('blocked', 'failed')) as undelivered,
        (select count(*) from deliveries d join orders o on o.id = d.order_id
          where d.status = 'pending' and o.status = 'paid'
            and o.paid_at < now() - make_interval(mins => ${LATE_DELIVERY_MINUTES})) as late`;
    return {
      paidNoStock: Number(counts!.paid_no_stock),
      undelivered: Number(counts!.undelivered),
      late: Number(counts!.late),
    };
  }

  /** The number on the Заказы tab (see needsOwner), read on every panel page: only the counts, one query. */
  async function needingOwner(): Promise<number> {
    return needsOwner(await stuckCounts());
  }

  async function attention(): Promise<Attention> {
    const [counts, duplicates, refusedNotifications] = await Promise.all([
      stuckCounts(),
      sql<{ order_id: string; received_at: Date }[]>`
        select order_id, received_at from payments
        where outcome = 'duplicate' and received_at > now() - make_interval(days => ${DUPLICATE_WINDOW_DAYS})
        order by received_at desc limit 20`,
      refused.recent(10, REFUSED_WINDOW_DAYS),
    ]);
    return {
      ...counts,
      duplicatePayments: duplicates.map((d) => ({ orderId: Number(d.order_id), receivedAt: d.received_at })),
      refusedNotifications,
    };
  }

  return {
    /** How long a confirmed order holds its key for the buyer to pay (RESERVATION_MINUTES). */
    reservationMinutes: config.reservationMinutes,
    byId,
    place,
    markPaid,
    expireDue,
    fulfilWaiting,
    closeUnfulfilled,
    paymentsOf,
    attention,
    needingOwner,
  };
}

export type Orders = ReturnType<typeof createOrders>;
