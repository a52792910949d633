import type { ShopDeps } from "../deps.ts";
import { REFUSED_WINDOW_DAYS, type RefusedNotification, type RefusedNotifications } from "./refused-notifications.ts";

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

/** What needs the owner: the panel's badge, the orders tab's notices and the dashboard's. */
export function createAttention(deps: ShopDeps, options: { refused: RefusedNotifications }) {
  const { sql } = deps;
  const { refused } = options;

  /**
   * What needs the owner, for the panel's badge and notices: paid orders without a key, deliveries that stopped
   * (the buyer blocked the bot, or Telegram failed for about a day), paid orders still not delivered after
   * LATE_DELIVERY_MINUTES (Telegram trouble: the job keeps retrying), and the second payments of the last
   * DUPLICATE_WINDOW_DAYS (to refund in AnyPay; one in Stars given back from the panel is settled and not listed). Every count is read from a partial index.
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
        where outcome = 'duplicate' and refunded_at is null
          and received_at > now() - make_interval(days => ${DUPLICATE_WINDOW_DAYS})
        order by received_at desc limit 20`,
      refused.recent(10, REFUSED_WINDOW_DAYS),
    ]);
    return {
      ...counts,
      duplicatePayments: duplicates.map((d) => ({ orderId: Number(d.order_id), receivedAt: d.received_at })),
      refusedNotifications,
    };
  }

  return { needingOwner, attention };
}
