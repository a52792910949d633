import type postgres from "postgres";
import { keysetPage, type Ordering } from "../../db/keyset.ts";
import type { DurationDays } from "../../lib/durations.ts";
import { maskKey } from "../../lib/keys.ts";
import type { ShopDeps } from "../deps.ts";
import { cleanQuery, num, type Page, type PageRequest, prefixPattern } from "../lists.ts";
import { PAID_STATUSES } from "../orders/lists.ts";

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
  /** Of the paid orders, renewals of the buyer's keys («продление»). */
  paidRenewals: number;
  /** What the buyer's payments actually charged (after promo codes; test payments left out). */
  paidRub: number;
  paidStars: number;
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
  /** The key's id, for a link to its page. */
  keyId: number | null;
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
  key_id: string | null;
};

const toUserEvent = (r: UserEventRow): UserEvent => ({
  id: Number(r.page_id),
  at: r.at,
  kind: r.kind,
  detail: r.detail ?? {},
  productName: r.product_name,
  order: r.order_id === null ? null : { id: Number(r.order_id), days: r.order_days ?? 0, rub: r.order_rub ?? 0 },
  maskedKey: r.key === null ? null : maskKey(r.key),
  keyId: r.key_id === null ? null : Number(r.key_id),
});

/** Bot users as the panel lists them, and what the panel shows of each: stats, keys, log. */
export function createUserLists(deps: ShopDeps) {
  const { sql } = deps;
  const paid = [...PAID_STATUSES];

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

  async function list(
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
              coalesce(sum(o.paid_rub) filter (where o.status in ${sql(paid)} and not o.test), 0) as paid_rub
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

  async function stats(telegramId: number): Promise<UserStats> {
    const [[o], [k]] = await Promise.all([
      sql<
        {
          orders: string;
          paid_orders: string;
          paid_renewals: string;
          paid_rub: string;
          paid_stars: string;
          first_paid_at: Date | null;
          last_paid_at: Date | null;
        }[]
      >`
        select count(*) as orders,
          count(*) filter (where status in ${sql(paid)} and not test) as paid_orders,
          count(*) filter (where status in ${sql(paid)} and not test and kind = 'renewal') as paid_renewals,
          coalesce(sum(paid_rub) filter (where status in ${sql(paid)} and not test), 0) as paid_rub,
          coalesce(sum(paid_stars) filter (where status in ${sql(paid)} and not test), 0) as paid_stars,
          min(paid_at) as first_paid_at, max(paid_at) as last_paid_at
        from orders where user_id = ${telegramId}`,
      sql<{ n: string }[]>`select count(*) as n from keys where buyer_id = ${telegramId}`,
    ]);
    return {
      orders: Number(o!.orders),
      paidOrders: Number(o!.paid_orders),
      paidRenewals: Number(o!.paid_renewals),
      paidRub: Number(o!.paid_rub),
      paidStars: Number(o!.paid_stars),
      firstPaidAt: o!.first_paid_at,
      lastPaidAt: o!.last_paid_at,
      keys: Number(k!.n),
    };
  }

  /** A buyer's keys, newest sale first (a buyer has a handful; the cap keeps a pathological one cheap). */
  async function keys(telegramId: number, limit = 200): Promise<UserKey[]> {
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
           coalesce(p.name, op.name, (select name from products where id = k.product_id)) as product_name,
           o.id::text as order_id, o.days as order_days, o.amount_rub as order_rub,
           k.key, k.id::text as key_id
    from user_events e
    left join orders o
      on o.id = case when e.detail->>'orderId' ~ '^[0-9]{1,15}$' then (e.detail->>'orderId')::bigint end
    left join products op on op.id = o.product_id
    left join products p
      on p.id = case when e.detail->>'productId' ~ '^[0-9]{1,15}$' then (e.detail->>'productId')::bigint end
    left join lateral (
      select id, key, product_id from keys
      where id = case when e.detail->>'keyId' ~ '^[0-9]{1,15}$' then (e.detail->>'keyId')::bigint end
         or (o.id is not null and order_id = o.id)
         -- A renewal's key is the one its order names.
         or id = o.key_id
      order by state = 'sold' desc
      limit 1
    ) k on true
    where ${where}
    order by ${orderBy}
    limit ${limit}`;

  async function events(telegramId: number, page: PageRequest): Promise<Page<UserEvent>> {
    const ordering: Ordering = { key: null, id: sql`e.id`, descending: true };
    const result = await keysetPage(sql, ordering, page, (where, orderBy, limit) =>
      eventNames(sql`e.user_id = ${telegramId} and ${where}`, orderBy, limit),
    );
    return { ...result, rows: result.rows.map(toUserEvent) };
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

  return { list, stats, keys, events, orderEvents };
}
