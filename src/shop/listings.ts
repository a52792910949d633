import type postgres from "postgres";
import { keysetPage, type Ordering, type Page, type PageRequest } from "../db/keyset.ts";
import type { DurationDays } from "../lib/durations.ts";
import { maskKey } from "../lib/keys.ts";
import type { DeliveryStatus } from "./deliveries.ts";
import type { ShopDeps } from "./deps.ts";
import { type KeyRecord, type KeyRow, toKeyRecord } from "./keys.ts";
import type { OrderStatus } from "./orders.ts";

/**
 * What the panel lists: bot users, a user's history, a product's keys, orders. Every list is a keyset page over an
 * index (sql/0003_panel.sql) with search by prefix or exact id, so it stays fast at 100 000 users and 1 000 000 keys.
 */

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

export const USER_SORTS = ["last_seen", "first_seen", "id"] as const;
export type UserSort = (typeof USER_SORTS)[number];
export function isUserSort(value: unknown): value is UserSort {
  return typeof value === "string" && (USER_SORTS as readonly string[]).includes(value);
}

export type UserListItem = {
  telegramId: number;
  username: string | null;
  firstName: string;
  lastName: string | null;
  firstSeenAt: Date;
  lastSeenAt: Date;
  blockedAt: Date | null;
  orders: number;
  paidRub: number;
};

export type UserStats = {
  orders: number;
  paidOrders: number;
  paidRub: number;
  firstPaidAt: Date | null;
  lastPaidAt: Date | null;
  keys: number;
};

export type UserKey = {
  id: number;
  key: string;
  productId: number;
  productName: string;
  days: DurationDays;
  soldAt: Date | null;
  hwid: string | null;
  activatedAt: Date | null;
  expiresAt: Date | null;
  bannedAt: Date | null;
  gift: boolean;
  orderId: number | null;
};

/**
 * One thing a bot user did or that happened to them, with the names the panel shows it with: the product (named
 * by the event, or by its order), the order's duration and amount, and the key involved, masked as in the logs.
 */
export type UserEvent = {
  id: number;
  at: Date;
  kind: string;
  detail: Record<string, unknown>;
  productName: string | null;
  order: { id: number; days: number; rub: number } | null;
  maskedKey: string | null;
};

type UserEventRow = {
  page_key: null;
  page_id: string;
  at: Date;
  kind: string;
  detail: Record<string, unknown> | null;
  product_name: string | null;
  order_id: string | null;
  order_days: number | null;
  order_rub: number | null;
  key: string | null;
};

const toUserEvent = (r: UserEventRow): UserEvent => ({
  id: Number(r.page_id),
  at: r.at,
  kind: r.kind,
  detail: r.detail ?? {},
  productName: r.product_name,
  order: r.order_id === null ? null : { id: Number(r.order_id), days: r.order_days ?? 0, rub: r.order_rub ?? 0 },
  maskedKey: r.key === null ? null : maskKey(r.key),
});

export type OrderListItem = {
  id: number;
  userId: number;
  userName: string;
  username: string | null;
  productId: number;
  productName: string;
  days: DurationDays;
  amountRub: number;
  status: OrderStatus;
  test: boolean;
  createdAt: Date;
  paidAt: Date | null;
  deliveredAt: Date | null;
  failure: string | null;
  transactionId: string | null;
  keyId: number | null;
  /** The delivery of a paid order (null before payment, or for a paid_no_stock order). */
  deliveryStatus: DeliveryStatus | null;
};

export type KeyList = "unsold" | "sold";

/** A key as the panel lists it: the key itself and, once sold, who bought it. */
export type KeyListItem = KeyRecord & { buyerName: string | null; buyerUsername: string | null };

const MAX_QUERY = 128;

/** A LIKE pattern matching strings that start with `text`, with LIKE's own wildcards taken literally. */
export function prefixPattern(text: string): string {
  return `${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Control characters never match anything we store, and a NUL makes Postgres refuse the whole query (a 500). */
function cleanQuery(q: string | undefined): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  const controls = /[\u0000-\u001f\u007f]/g;
  return (q ?? "").replace(controls, "").trim().slice(0, MAX_QUERY);
}

const num = (v: string | number | null): number | null => (v === null ? null : Number(v));

export function createListings(deps: ShopDeps) {
  const { sql } = deps;
  const paid = [...PAID_STATUSES];

  // ---- bot users -------------------------------------------------------------------------------------------

  function userOrdering(sort: UserSort): Ordering {
    if (sort === "id") return { key: null, id: sql`u.telegram_id`, descending: false };
    const column = sort === "first_seen" ? sql`u.first_seen_at` : sql`u.last_seen_at`;
    return { key: column, keyType: "timestamptz", id: sql`u.telegram_id`, descending: true };
  }
  function userKeyText(sort: UserSort): postgres.Fragment {
    if (sort === "id") return sql`null::text`;
    return sort === "first_seen" ? sql`u.first_seen_at::text` : sql`u.last_seen_at::text`;
  }

  /**
   * Search: digits find a Telegram id exactly (or a first name starting with them); "@name" a username prefix;
   * other text a prefix of the username, first or last name; "Имя Фамилия" first and last name prefixes together.
   */
  function userSearch(q: string): postgres.Fragment {
    if (q === "") return sql`true`;
    if (/^\d{1,16}$/.test(q)) {
      return sql`(u.telegram_id = ${q}::bigint or lower(u.first_name) like ${prefixPattern(q.toLowerCase())})`;
    }
    if (q.startsWith("@")) return sql`lower(u.username) like ${prefixPattern(q.slice(1).toLowerCase())}`;
    const p = prefixPattern(q.toLowerCase());
    const words = q.toLowerCase().split(/\s+/);
    const both =
      words.length === 2
        ? sql`or (lower(u.first_name) like ${prefixPattern(words[0]!)} and lower(u.last_name) like ${prefixPattern(words[1]!)})`
        : sql``;
    return sql`(lower(u.username) like ${p} or lower(u.first_name) like ${p} or lower(u.last_name) like ${p} ${both})`;
  }

  async function users(
    options: { q?: string | undefined; sort?: UserSort | undefined } & PageRequest,
  ): Promise<Page<UserListItem> & { total: number }> {
    const q = cleanQuery(options.q);
    const sort = options.sort ?? "last_seen";
    const filter = userSearch(q);
    const [page, [count]] = await Promise.all([
      keysetPage(
        sql,
        userOrdering(sort),
        options,
        (where, orderBy, limit) =>
          sql<
            {
              page_key: string | null;
              page_id: string;
              username: string | null;
              first_name: string;
              last_name: string | null;
              first_seen_at: Date;
              last_seen_at: Date;
              blocked_at: Date | null;
              orders: string;
              paid_rub: string;
            }[]
          >`
          select ${userKeyText(sort)} as page_key, u.telegram_id::text as page_id,
            u.username, u.first_name, u.last_name, u.first_seen_at, u.last_seen_at, u.blocked_at,
            s.orders, s.paid_rub
          from bot_users u
          cross join lateral (
            select count(*) as orders,
              coalesce(sum(o.amount_rub) filter (where o.status in ${sql(paid)} and not o.test), 0) as paid_rub
            from orders o where o.user_id = u.telegram_id
          ) s
          where ${filter} and ${where}
          order by ${orderBy}
          limit ${limit}`,
      ),
      sql<{ n: string }[]>`select count(*) as n from bot_users u where ${filter}`,
    ]);
    return {
      ...page,
      total: Number(count!.n),
      rows: page.rows.map((r) => ({
        telegramId: Number(r.page_id),
        username: r.username,
        firstName: r.first_name,
        lastName: r.last_name,
        firstSeenAt: r.first_seen_at,
        lastSeenAt: r.last_seen_at,
        blockedAt: r.blocked_at,
        orders: Number(r.orders),
        paidRub: Number(r.paid_rub),
      })),
    };
  }

  async function userStats(telegramId: number): Promise<UserStats> {
    const [[o], [k]] = await Promise.all([
      sql<
        {
          orders: string;
          paid_orders: string;
          paid_rub: string;
          first_paid_at: Date | null;
          last_paid_at: Date | null;
        }[]
      >`
        select count(*) as orders,
          count(*) filter (where status in ${sql(paid)} and not test) as paid_orders,
          coalesce(sum(amount_rub) filter (where status in ${sql(paid)} and not test), 0) as paid_rub,
          min(paid_at) as first_paid_at, max(paid_at) as last_paid_at
        from orders where user_id = ${telegramId}`,
      sql<{ n: string }[]>`select count(*) as n from keys where buyer_id = ${telegramId}`,
    ]);
    return {
      orders: Number(o!.orders),
      paidOrders: Number(o!.paid_orders),
      paidRub: Number(o!.paid_rub),
      firstPaidAt: o!.first_paid_at,
      lastPaidAt: o!.last_paid_at,
      keys: Number(k!.n),
    };
  }

  /** A buyer's keys, newest sale first (a buyer has a handful; the cap keeps a pathological one cheap). */
  async function userKeys(telegramId: number, limit = 200): Promise<UserKey[]> {
    const rows = await sql<
      {
        id: string;
        key: string;
        product_id: string;
        product_name: string;
        days: number;
        sold_at: Date | null;
        hwid: string | null;
        activated_at: Date | null;
        expires_at: Date | null;
        banned_at: Date | null;
        gift: boolean;
        order_id: string | null;
      }[]
    >`
      select k.id, k.key, k.product_id, p.name as product_name, k.days, k.sold_at, k.hwid, k.activated_at,
        k.expires_at, k.banned_at, k.gift, k.order_id
      from keys k join products p on p.id = k.product_id
      where k.buyer_id = ${telegramId}
      order by k.sold_at desc nulls last, k.id desc
      limit ${limit}`;
    return rows.map((r) => ({
      id: Number(r.id),
      key: r.key,
      productId: Number(r.product_id),
      productName: r.product_name,
      days: r.days as DurationDays,
      soldAt: r.sold_at,
      hwid: r.hwid,
      activatedAt: r.activated_at,
      expiresAt: r.expires_at,
      bannedAt: r.banned_at,
      gift: r.gift,
      orderId: num(r.order_id),
    }));
  }

  /**
   * The names behind events' ids: the product an event names (or its order's), the order, and the key (the one
   * the event names, or its order's). The ids come from JSON written by the shop; anything that is not one is
   * simply not joined.
   */
  const eventNames = (where: postgres.Fragment, orderBy: postgres.Fragment, limit: number) => sql<UserEventRow[]>`
    select null as page_key, e.id::text as page_id, e.at, e.kind, e.detail,
           coalesce(p.name, op.name) as product_name,
           o.id::text as order_id, o.days as order_days, o.amount_rub as order_rub,
           k.key
    from user_events e
    left join orders o
      on o.id = case when e.detail->>'orderId' ~ '^[0-9]{1,15}$' then (e.detail->>'orderId')::bigint end
    left join products op on op.id = o.product_id
    left join products p
      on p.id = case when e.detail->>'productId' ~ '^[0-9]{1,15}$' then (e.detail->>'productId')::bigint end
    left join lateral (
      select key from keys
      where id = case when e.detail->>'keyId' ~ '^[0-9]{1,15}$' then (e.detail->>'keyId')::bigint end
         or (o.id is not null and order_id = o.id)
      order by state = 'sold' desc
      limit 1
    ) k on true
    where ${where}
    order by ${orderBy}
    limit ${limit}`;

  async function userEvents(telegramId: number, page: PageRequest): Promise<Page<UserEvent>> {
    const ordering: Ordering = { key: null, id: sql`e.id`, descending: true };
    const result = await keysetPage(sql, ordering, page, (where, orderBy, limit) =>
      eventNames(sql`e.user_id = ${telegramId} and ${where}`, orderBy, limit),
    );
    return { ...result, rows: result.rows.map(toUserEvent) };
  }

  // ---- orders ----------------------------------------------------------------------------------------------

  type OrderRow = {
    page_key: null;
    page_id: string;
    user_id: string;
    first_name: string | null;
    last_name: string | null;
    username: string | null;
    product_id: string;
    product_name: string;
    days: number;
    amount_rub: number;
    status: OrderStatus;
    test: boolean;
    created_at: Date;
    paid_at: Date | null;
    delivered_at: Date | null;
    failure: string | null;
    transaction_id: string | null;
    key_id: string | null;
    delivery_status: DeliveryStatus | null;
  };

  const toOrderItem = (r: OrderRow): OrderListItem => ({
    id: Number(r.page_id),
    userId: Number(r.user_id),
    userName: [r.first_name, r.last_name].filter(Boolean).join(" "),
    username: r.username,
    productId: Number(r.product_id),
    productName: r.product_name,
    days: r.days as DurationDays,
    amountRub: r.amount_rub,
    status: r.status,
    test: r.test,
    createdAt: r.created_at,
    paidAt: r.paid_at,
    deliveredAt: r.delivered_at,
    failure: r.failure,
    transactionId: r.transaction_id,
    keyId: num(r.key_id),
    deliveryStatus: r.delivery_status,
  });

  const orderColumns = () => sql`
    o.id::text as page_id, null as page_key, o.user_id, u.first_name, u.last_name, u.username,
    o.product_id, p.name as product_name, o.days, o.amount_rub, o.status, o.test, o.created_at, o.paid_at,
    o.delivered_at, o.failure, o.transaction_id,
    (select k.id from keys k where k.order_id = o.id limit 1) as key_id,
    (select d.status from deliveries d where d.order_id = o.id) as delivery_status`;

  /** Orders, newest first; `q` is an order number or a buyer's Telegram id. */
  async function orders(
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
      (where, orderBy, limit) => sql<OrderRow[]>`
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

  /** One order as the list shows it (the order page's header), or null. */
  async function order(id: number): Promise<OrderListItem | null> {
    const [row] = await sql<OrderRow[]>`
      select ${orderColumns()}
      from orders o
      join products p on p.id = o.product_id
      join bot_users u on u.telegram_id = o.user_id
      where o.id = ${id}`;
    return row ? toOrderItem(row) : null;
  }

  /** The buyer's log entries about one order, newest first (a buyer has few; read through the user's index). */
  async function orderEvents(userId: number, orderId: number, limit = 50): Promise<UserEvent[]> {
    const rows = await eventNames(
      sql`e.user_id = ${userId} and e.detail->>'orderId' = ${String(orderId)}`,
      sql`e.id desc`,
      limit,
    );
    return rows.map(toUserEvent);
  }

  async function orderCounts(): Promise<Record<OrderStatus, number>> {
    const rows = await sql<{ status: OrderStatus; n: string }[]>`
      select status, count(*) as n from orders group by status`;
    const out = Object.fromEntries(ORDER_STATUSES.map((s) => [s, 0])) as Record<OrderStatus, number>;
    for (const r of rows) out[r.status] = Number(r.n);
    return out;
  }

  // ---- keys ------------------------------------------------------------------------------------------------

  type KeyListRow = KeyRow & {
    page_key: string | null;
    page_id: string;
    buyer_first_name: string | null;
    buyer_last_name: string | null;
    buyer_username: string | null;
  };

  const toKeyItem = (r: KeyListRow): KeyListItem => ({
    ...toKeyRecord(r),
    buyerName: r.buyer_id === null ? null : [r.buyer_first_name, r.buyer_last_name].filter(Boolean).join(" ") || null,
    buyerUsername: r.buyer_username,
  });

  function keyOrdering(list: KeyList): Ordering {
    return list === "sold"
      ? { key: sql`k.sold_at`, keyType: "timestamptz", id: sql`k.id`, descending: true }
      : { key: null, id: sql`k.id`, descending: true };
  }

  /**
   * Search in a key list: a key by its beginning (as typed, or upper-cased: generated keys are upper case); in sold
   * keys also a HWID, a buyer's Telegram id or an order number, exactly.
   */
  function keySearch(list: KeyList, q: string): postgres.Fragment {
    if (q === "") return sql`true`;
    const byKey = sql`(k.key like ${prefixPattern(q)} or k.key like ${prefixPattern(q.toUpperCase())})`;
    if (list === "unsold") return byKey;
    const byNumber = /^\d{1,16}$/.test(q) ? sql`or k.buyer_id = ${q}::bigint or k.order_id = ${q}::bigint` : sql``;
    return sql`(${byKey} or k.hwid = ${q} ${byNumber})`;
  }

  function keyFilter(productId: number, list: KeyList, days: DurationDays | undefined, q: string): postgres.Fragment {
    const state = list === "sold" ? sql`k.state = 'sold'` : sql`k.state <> 'sold'`;
    const duration = days === undefined ? sql`true` : sql`k.days = ${days}`;
    return sql`k.product_id = ${productId} and ${state} and ${duration} and ${keySearch(list, q)}`;
  }

  const keyColumns = (list: KeyList) => sql`
    ${list === "sold" ? sql`k.sold_at::text` : sql`null::text`} as page_key, k.id::text as page_id, k.id,
    k.product_id, k.days, k.key, k.state, k.order_id, k.buyer_id, u.first_name as buyer_first_name,
    u.last_name as buyer_last_name, u.username as buyer_username, k.gift, k.sold_at, k.hwid, k.activated_at,
    k.expires_at, k.banned_at, k.note, k.last_auth_at, k.created_at`;

  async function keys(
    productId: number,
    options: { list: KeyList; days?: DurationDays | undefined; q?: string | undefined } & PageRequest,
  ): Promise<Page<KeyListItem>> {
    const filter = keyFilter(productId, options.list, options.days, cleanQuery(options.q));
    const page = await keysetPage(
      sql,
      keyOrdering(options.list),
      options,
      (where, orderBy, limit) => sql<KeyListRow[]>`
        select ${keyColumns(options.list)}
        from keys k left join bot_users u on u.telegram_id = k.buyer_id
        where ${filter} and ${where}
        order by ${orderBy}
        limit ${limit}`,
    );
    return { ...page, rows: page.rows.map(toKeyItem) };
  }

  /** The key an order holds (reserved while unpaid, sold once paid), or null. */
  async function keyOfOrder(orderId: number): Promise<KeyListItem | null> {
    const [row] = await sql<KeyListRow[]>`
      select ${keyColumns("sold")}
      from keys k left join bot_users u on u.telegram_id = k.buyer_id
      where k.order_id = ${orderId}
      order by k.state = 'sold' desc, k.id desc
      limit 1`;
    return row ? toKeyItem(row) : null;
  }

  async function keyById(productId: number, keyId: number): Promise<KeyListItem | null> {
    const [row] = await sql<KeyListRow[]>`
      select ${keyColumns("sold")}
      from keys k left join bot_users u on u.telegram_id = k.buyer_id
      where k.id = ${keyId} and k.product_id = ${productId}`;
    return row ? toKeyItem(row) : null;
  }

  /**
   * Every key of a list in batches of `batchSize`, walking the same index as the page view, so exporting a million
   * keys holds neither a long transaction nor the whole list in memory.
   */
  async function* allKeys(
    productId: number,
    options: { list: KeyList; days?: DurationDays | undefined; q?: string | undefined },
    batchSize = 5_000,
  ): AsyncGenerator<KeyListItem[]> {
    let after: string | undefined;
    for (;;) {
      const page = await keys(productId, { ...options, after, limit: batchSize });
      if (page.rows.length > 0) yield page.rows;
      if (!page.next) return;
      after = page.next;
    }
  }

  return {
    users,
    userStats,
    userKeys,
    userEvents,
    orders,
    order,
    orderEvents,
    orderCounts,
    keys,
    keyById,
    keyOfOrder,
    allKeys,
  };
}

export type Listings = ReturnType<typeof createListings>;
