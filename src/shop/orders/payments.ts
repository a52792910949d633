import { invalidateCatalogue } from "../../cache/catalogue.ts";
import type { Tx } from "../../db/client.ts";
import { log } from "../../lib/log.ts";
import type { ShopDeps } from "../deps.ts";
import { pgCode } from "../errors.ts";
import { allocateKey } from "../keys/keys.ts";
import { type Deliveries, enqueueDelivery } from "./deliveries.ts";
import { type Order, type OrderRow, type OrderStatus, type PaidBy, toOrder } from "./orders.ts";
import { applyRenewal } from "./renewals.ts";

/**
 * A payment, already verified by its provider: AnyPay's notification, Telegram's successful_payment, the zero payment
 * of an order a promo code covers in full, or an admin's test button.
 */
export type IncomingPayment = {
  orderId: number;
  /**
   * AnyPay's transaction_id, Telegram's telegram_payment_charge_id, "promo:<order id>" or "test:<order id>": one
   * transaction is applied once, however often it is reported.
   */
  transactionId: string;
  /** As received, e.g. "299" or "299.00" (roubles), "150" (Stars); the provider has checked it is the order's. */
  amount: string;
  currency: string;
  method?: string | null;
  email?: string | null;
  profit?: string | null;
  test: boolean;
  source: PaidBy;
};

/** What a paid renewal did: the key, its new expiry (null: not activated yet), and whether it is banned. */
export type RenewalApplied = { key: string; expiresAt: Date | null; renewedDays: number; banned: boolean };

export type PaymentOutcome =
  /** Paid now: a key is sold to the buyer and its delivery queued. `replacedKey`: the reservation had lapsed and
   * the key came from stock. A renewal order sells no key: `renewal` says what its payment did to the key it renews
   * (and the buyer's message about it is queued the same way). */
  | { kind: "paid"; order: Order; replacedKey: boolean; renewal?: RenewalApplied }
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
  source: PaidBy;
  outcome: "applied" | "no_stock" | "duplicate";
  receivedAt: Date;
  /** A Stars payment given back to the buyer (refundStarPayment), and by whom. */
  refundedAt: Date | null;
  refundedBy: string | null;
};

type PaymentRow = {
  transaction_id: string;
  amount: string;
  currency: string;
  method: string | null;
  test: boolean;
  source: PaidBy;
  outcome: PaymentRecord["outcome"];
  received_at: Date;
  refunded_at: Date | null;
  refunded_by: string | null;
};

/** The columns of PaymentRow (a constant, never input). */
const PAYMENT_COLUMNS =
  "transaction_id, amount, currency, method, test, source, outcome, received_at, refunded_at, refunded_by";

const toPaymentRecord = (r: PaymentRow): PaymentRecord => ({
  transactionId: r.transaction_id,
  amount: r.amount,
  currency: r.currency,
  method: r.method,
  test: r.test,
  source: r.source,
  outcome: r.outcome,
  receivedAt: r.received_at,
  refundedAt: r.refunded_at,
  refundedBy: r.refunded_by,
});

/** Why a Stars order that waited for a key was closed: its Stars were given back (the order page says so). */
export const REFUNDED_NOTE = "звёзды возвращены покупателю";

/**
 * What a payment actually charged, in the order's terms (the provider has checked the amount): AnyPay charges the
 * order's roubles, Telegram its Stars; a code that covers the whole price and an admin's test button charge nothing.
 */
function charged(order: Order, source: PaidBy): { rub: number; stars: number | null } {
  if (source === "anypay") return { rub: order.amountRub, stars: null };
  if (source === "telegram_stars") return { rub: 0, stars: order.stars ?? 0 };
  return { rub: 0, stars: null };
}

/**
 * Orders a payment has already been applied to, whatever became of them since (`failed` is a paid order an admin
 * closed): a new payment for one of these is a duplicate to refund. Not the revenue statuses of orders/lists.ts.
 */
const ALREADY_PAID_STATUSES: readonly OrderStatus[] = ["paid", "delivered", "paid_no_stock", "failed"];

/** A decimal as AnyPay sends it, or null when it is not one (lenient: only for fields kept for the record). */
function decimalOrNull(text: string | null | undefined): string | null {
  return text && /^-?\d{1,10}(\.\d{1,8})?$/.test(text) ? text : null;
}

/**
 * What came of giving a Stars payment back (docs/panel.md#telegram-stars). Only a payment that bought nothing can be:
 * a second payment of an order paid before, or the payment of an order that has no key (it was paid too late, with
 * none left, and is waiting, or the owner closed it).
 */
export type StarsRefund =
  /** Given back now; the order, if it was waiting for a key, is closed so none goes out after the money. */
  | { kind: "refunded"; order: Order; payment: PaymentRecord }
  /** It had been given back already (a second click, another admin): nothing more to do. */
  | { kind: "already"; payment: PaymentRecord }
  | { kind: "not_found" }
  /** The payment bought the order's key: giving it back would leave the buyer with the key and the Stars. */
  | { kind: "has_key"; order: Order }
  /** Telegram refused; nothing was changed here. `reason` is Telegram's description. */
  | { kind: "telegram_refused"; reason: string };

/**
 * Whether a payment in Stars can be given back: one not given back yet that bought nothing the buyer can use — a
 * second payment of an order paid before, the payment of an order that has no key (paid too late with none left,
 * or closed), or a renewal paid for a key that was banned by then (`paidForBannedKey`: the key the order renews was
 * banned before the payment arrived, and still is).
 */
export function starsRefundable(
  order: Pick<Order, "status" | "kind">,
  payment: Pick<PaymentRecord, "source" | "outcome" | "refundedAt">,
  paidForBannedKey = false,
): boolean {
  if (payment.source !== "telegram_stars" || payment.refundedAt !== null) return false;
  if (payment.outcome === "duplicate" || order.status === "paid_no_stock" || order.status === "failed") return true;
  return order.kind === "renewal" && paidForBannedKey;
}

/** Sells a key to a paid order inside `tx`; the order row is locked by the caller. */
export async function sellKey(tx: Tx, order: Order, keyId: number): Promise<void> {
  await tx`
    update keys set state = 'sold', order_id = ${order.id}, buyer_id = ${order.userId}, sold_at = now()
    where id = ${keyId}`;
  await enqueueDelivery(tx, order.id, order.userId);
}

/** What a payment does to its order: applied once, however often and however concurrently it is reported. */
export function createOrderPayments(
  deps: ShopDeps,
  options: {
    deliveries: Deliveries;
    /** Drops the licence's cached answers for these keys in every process (keys.announce). */
    announce: (keys: string[]) => Promise<void>;
  },
) {
  const { sql } = deps;
  const { deliveries, announce } = options;

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

        if (order.kind === "renewal") {
          // A renewal needs no stock and holds no key: its payment adds its days to the key it names, whatever its
          // payment window said (a late payment still bought the days), exactly once under the order's lock.
          const money = charged(order, payment.source);
          const [updated] = await tx<OrderRow[]>`
            update orders set status = 'paid', paid_at = now(), transaction_id = ${payment.transactionId},
              payment_method = ${payment.method?.slice(0, 64) ?? null}, test = ${payment.test},
              provider = ${payment.source}, paid_rub = ${money.rub}, paid_stars = ${money.stars}, updated_at = now()
            where id = ${order.id}
            returning *, ${order.productName}::text as product_name`;
          const paid = toOrder(updated!);
          const renewal = await applyRenewal(tx, paid);
          await enqueueDelivery(tx, paid.id, paid.userId);
          await recordPayment(tx, paid, payment, "applied");
          await tx`
            insert into user_events (user_id, kind, detail)
            values (${order.userId}, 'order_paid',
                    ${tx.json({ ...event, keyId: order.keyId, renewal: true, keyBanned: renewal.banned })})`;
          return { kind: "paid", order: paid, replacedKey: false, renewal };
        }

        // pending (reservation possibly past its time but not yet expired by the job) or expired.
        const [reserved] = await tx<{ id: string }[]>`
          select id from keys where order_id = ${order.id} and state = 'reserved' for update`;
        const key = reserved ? { id: Number(reserved.id) } : await allocateKey(tx, order.productId, order.days);
        const status: OrderStatus = key ? "paid" : "paid_no_stock";
        const money = charged(order, payment.source);
        const [updated] = await tx<OrderRow[]>`
          update orders set status = ${status}, paid_at = now(), transaction_id = ${payment.transactionId},
            payment_method = ${payment.method?.slice(0, 64) ?? null}, test = ${payment.test},
            provider = ${payment.source}, paid_rub = ${money.rub}, paid_stars = ${money.stars}, updated_at = now()
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

    if (outcome.kind === "paid" && outcome.renewal) {
      // The licence API obeys the new expiry at once, in every process.
      await announce([outcome.renewal.key]);
      deliveries.wake();
      const context = {
        orderId: outcome.order.id,
        keyId: outcome.order.keyId,
        days: outcome.order.days,
        transactionId: payment.transactionId,
        test: payment.test,
      };
      if (outcome.renewal.banned) log.error("renewal paid for a banned key: unban it or refund the payment", context);
      else log.info("renewal paid", context);
    } else if (outcome.kind === "paid") {
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
   * Gives a Stars payment back: checks it bought nothing (see StarsRefund), asks Telegram (`giveBack`, which throws
   * Telegram's refusal), and records who gave it back and when. The order and the payment stay locked while Telegram
   * answers, so a second click waits and then finds the payment given back instead of asking Telegram again.
   */
  async function refundStars(input: {
    orderId: number;
    transactionId: string;
    /** Who gave it back: the panel login, for the ledger. */
    by: string;
    giveBack: (userId: number, transactionId: string) => Promise<void>;
  }): Promise<StarsRefund> {
    return await sql.begin(async (tx): Promise<StarsRefund> => {
      const [row] = await tx<OrderRow[]>`
        select o.*, p.name as product_name from orders o join products p on p.id = o.product_id
        where o.id = ${input.orderId} for update of o`;
      if (!row) return { kind: "not_found" };
      const order = toOrder(row);
      const [payment] = await tx<PaymentRow[]>`
        select ${sql.unsafe(PAYMENT_COLUMNS)} from payments
        where order_id = ${order.id} and transaction_id = ${input.transactionId} and source = 'telegram_stars'
        for update`;
      if (!payment) return { kind: "not_found" };
      const record = toPaymentRecord(payment);
      if (record.refundedAt) return { kind: "already", payment: record };
      const [renewed] =
        order.kind === "renewal" && order.keyId !== null
          ? await tx<{ banned: boolean }[]>`
              select banned_at is not null and banned_at <= ${order.paidAt} as banned
              from keys where id = ${order.keyId} for update`
          : [];
      if (!starsRefundable(order, record, renewed?.banned ?? false)) return { kind: "has_key", order };
      try {
        await input.giveBack(order.userId, input.transactionId);
      } catch (error) {
        return { kind: "telegram_refused", reason: (error as Error).message };
      }
      const [refunded] = await tx<PaymentRow[]>`
        update payments set refunded_at = now(), refunded_by = ${input.by.slice(0, 100)}
        where transaction_id = ${input.transactionId}
        returning ${sql.unsafe(PAYMENT_COLUMNS)}`;
      let after = order;
      if (order.status === "paid_no_stock" && payment.outcome !== "duplicate") {
        // The money is back: a key that turns up later must not go out to this order too.
        const [closed] = await tx<OrderRow[]>`
          update orders set status = 'failed', failure = ${REFUNDED_NOTE}, updated_at = now()
          where id = ${order.id}
          returning *, ${order.productName}::text as product_name`;
        after = toOrder(closed!);
      }
      await tx`
        insert into user_events (user_id, kind, detail)
        values (${order.userId}, 'stars_refunded',
                ${tx.json({ orderId: order.id, transactionId: input.transactionId, amount: payment.amount, by: input.by })})`;
      return { kind: "refunded", order: after, payment: toPaymentRecord(refunded!) };
    });
  }

  /** Every payment recorded for an order (normally one; more means it was paid twice), oldest first. */
  async function paymentsOf(orderId: number): Promise<PaymentRecord[]> {
    const rows = await sql<PaymentRow[]>`
      select ${sql.unsafe(PAYMENT_COLUMNS)} from payments where order_id = ${orderId} order by id`;
    return rows.map(toPaymentRecord);
  }

  return { markPaid, paymentsOf, refundStars };
}
