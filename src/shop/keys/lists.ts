import type postgres from "postgres";
import { keysetPage, type Ordering } from "../../db/keyset.ts";
import type { DurationDays } from "../../lib/durations.ts";
import type { ShopDeps } from "../deps.ts";
import { cleanQuery, type Page, type PageRequest, prefixPattern } from "../lists.ts";
import { type KeyRecord, type KeyRow, toKeyRecord } from "./keys.ts";

export type KeyList = "unsold" | "sold";

/** A key as the panel lists it: the key itself and, once sold, who bought it. */
export type KeyListItem = KeyRecord & { buyerName: string | null; buyerUsername: string | null };

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

/** A product's keys as the panel lists them: sold and unsold apart, searchable, exportable. */
export function createKeyLists(deps: ShopDeps) {
  const { sql } = deps;

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

  async function list(
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
  async function itemOfOrder(orderId: number): Promise<KeyListItem | null> {
    const [row] = await sql<KeyListRow[]>`
      select ${keyColumns("sold")}
      from keys k left join bot_users u on u.telegram_id = k.buyer_id
      -- A purchase's key points at its order; a renewal's order points at the key it renews.
      where k.order_id = ${orderId} or k.id = (select key_id from orders where id = ${orderId})
      order by k.state = 'sold' desc, k.id desc
      limit 1`;
    return row ? toKeyItem(row) : null;
  }

  /** One key of a product as its list shows it, or null. */
  async function item(productId: number, keyId: number): Promise<KeyListItem | null> {
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
  async function* all(
    productId: number,
    options: { list: KeyList; days?: DurationDays | undefined; q?: string | undefined },
    batchSize = 5_000,
  ): AsyncGenerator<KeyListItem[]> {
    let after: string | undefined;
    for (;;) {
      const page = await list(productId, { ...options, after, limit: batchSize });
      if (page.rows.length > 0) yield page.rows;
      if (!page.next) return;
      after = page.next;
    }
  }

  return { list, item, itemOfOrder, all };
}
