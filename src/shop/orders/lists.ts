import { keysetPage, type Ordering } from "../../db/keyset.ts";
import type { DurationDays } from "../../lib/durations.ts";
import type { ShopDeps } from "../deps.ts";
import { cleanQuery, num, type Page, type PageRequest } from "../lists.ts";
import type { DeliveryStatus } from "./deliveries.ts";
import type { OrderKind, OrderStatus, PaidBy } from "./orders.ts";

export const ORDER_STATUSES: readonly OrderStatus[] = [
  "pending",
  "paid",
  "delivered",
  "failed",
  "expired",
  "paid_no_stock",
] as const;

export function isOrderStatus(value: unknown): value is OrderStatus {
  return typeof value === "string" && (ORDER_STATUSES as readonly string[]).includes(value);
}

/** Orders that brought money in (test payments by admins excluded where revenue is counted). */
export const PAID_STATUSES: readonly OrderStatus[] = ["paid", "delivered", "paid_no_stock"] as const;

export type OrderListItem = {
  id: number;
  /** A purchase, or a renewal of the buyer's key (`keyId`): the panel says «продление». */
  kind: OrderKind;
  userId: number;
  userName: string;
  username: string | null;
  productId: number;
  productName: string;
  days: DurationDays;
  amountRub: number;
  discountRub: number;
  promoCode: string | null;
  status: OrderStatus;
  test: boolean;
  /** Who paid it, and what was charged in Stars (roubles: amountRub); null until paid. */
  paidBy: PaidBy | null;
  paidStars: number | null;
  createdAt: Date;
  paidAt: Date | null;
  deliveredAt: Date | null;
  failure: string | null;
  transactionId: string | null;
  keyId: number | null;
  /** The delivery of a paid order (null before payment, or for a paid_no_stock order). */
  deliveryStatus: DeliveryStatus | null;
};

type OrderListRow = {
  page_key: null;
  page_id: string;
  kind: OrderKind;
  user_id: string;
  first_name: string | null;
  last_name: string | null;
  username: string | null;
  product_id: string;
  product_name: string;
  days: number;
  amount_rub: number;
  discount_rub: number;
  promo_code: string | null;
  status: OrderStatus;
  test: boolean;
  provider: PaidBy | null;
  paid_stars: number | null;
  created_at: Date;
  paid_at: Date | null;
  delivered_at: Date | null;
  failure: string | null;
  transaction_id: string | null;
  key_id: string | null;
  delivery_status: DeliveryStatus | null;
};

const toOrderItem = (r: OrderListRow): OrderListItem => ({
  id: Number(r.page_id),
  kind: r.kind,
  userId: Number(r.user_id),
  userName: [r.first_name, r.last_name].filter(Boolean).join(" "),
  username: r.username,
  productId: Number(r.product_id),
  productName: r.product_name,
  days: r.days as DurationDays,
  amountRub: r.amount_rub,
  discountRub: r.discount_rub,
  promoCode: r.promo_code,
  status: r.status,
  test: r.test,
  paidBy: r.provider,
  paidStars: r.paid_stars,
  createdAt: r.created_at,
  paidAt: r.paid_at,
  deliveredAt: r.delivered_at,
  failure: r.failure,
  transactionId: r.transaction_id,
  keyId: num(r.key_id),
  deliveryStatus: r.delivery_status,
});

/** The orders as the panel lists them: the Заказы tab, a buyer's page, the dashboard's latest. */
export function createOrderLists(deps: ShopDeps) {
  const { sql } = deps;

  const orderColumns = () => sql`
    o.id::text as page_id, null as page_key, o.kind, o.user_id, u.first_name, u.last_name, u.username,
    o.product_id, p.name as product_name, o.days, o.amount_rub, o.discount_rub, o.promo_code, o.status, o.test,
    o.provider, o.paid_stars, o.created_at, o.paid_at,
    o.delivered_at, o.failure, o.transaction_id,
    coalesce(o.key_id, (select k.id from keys k where k.order_id = o.id limit 1)) as key_id,
    (select d.status from deliveries d where d.order_id = o.id) as delivery_status`;

  /** Orders, newest first; `q` is an order number or a buyer's Telegram id. */
  async function list(
    options: { status?: OrderStatus | undefined; q?: string | undefined; userId?: number | undefined } & PageRequest,
  ): Promise<Page<OrderListItem>> {
    const q = cleanQuery(options.q);
    const byStatus = options.status ? sql`o.status = ${options.status}` : sql`true`;
    const byUser = options.userId !== undefined ? sql`o.user_id = ${options.userId}` : sql`true`;
    const search = /^\d{1,16}$/.test(q) ? sql`(o.id = ${q}::bigint or o.user_id = ${q}::bigint)` : sql`true`;
    const ordering: Ordering = { key: null, id: sql`o.id`, descending: true };
    const page = await keysetPage(
      sql,
      ordering,
      options,
      (where, orderBy, limit) => sql<OrderListRow[]>`
        select ${orderColumns()}
        from orders o
        join products p on p.id = o.product_id
        join bot_users u on u.telegram_id = o.user_id
        where ${byStatus} and ${byUser} and ${search} and ${where}
        order by ${orderBy}
        limit ${limit}`,
    );
    return { ...page, rows: page.rows.map(toOrderItem) };
  }

  async function counts(): Promise<Record<OrderStatus, number>> {
    const rows = await sql<{ status: OrderStatus; n: string }[]>`
      select status, count(*) as n from orders group by status`;
    const out = Object.fromEntries(ORDER_STATUSES.map((s) => [s, 0])) as Record<OrderStatus, number>;
    for (const r of rows) out[r.status] = Number(r.n);
    return out;
  }

  return { list, counts };
}
