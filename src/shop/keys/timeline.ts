import type { ShopDeps } from "../deps.ts";
import type { KeyEventKind } from "./events.ts";
import { type KeyRecord, type KeyRow, toKeyRecord } from "./keys.ts";

/**
 * One key's whole story for its page in the panel (docs/panel.md#the-key-page): what was recorded of it (key_events,
 * key_mismatches, sharing_alerts) beside what the shop keeps anyway — the key row itself, its order, the payments for
 * that order and the delivery — read in one query, newest first.
 */

/** Lines read from what the shop keeps for other reasons, beside the recorded kinds of events.ts. */
export type DerivedKind =
  /** Generated or imported (keys.origin, added_by), or just "added" for keys older than that record. */
  | "added"
  /** The order that holds the key was placed: the key was reserved for it. */
  | "reserved"
  /** A payment for that order arrived (one line per payment: a second one is money to refund). */
  | "payment"
  /** The order was paid and the key sold to its buyer. */
  | "sold"
  /** The purchase's delivery in Telegram: sent, waiting, or stopped (blocked, failed). */
  | "delivery"
  /** HWID mismatches from one foreign PC: count, first and last time, addresses. */
  | "mismatches"
  /** A sharing alert was raised about the key; how it was resolved is a line of its own (banned, hwid_reset, …). */
  | "sharing_alert";

export type TimelineKind = KeyEventKind | DerivedKind;

/** Who did it, with the name the panel shows for a Telegram user (null when they never wrote to the bot). */
export type TimelineActor =
  | { role: "panel"; login: string }
  | { role: "admin" | "buyer"; telegramId: number; name: string | null; username: string | null }
  | { role: "cli" | "system" | "loader" };

export type TimelineLine = {
  at: Date;
  /** A kind this version knows, or one a newer version recorded (the page words it plainly). */
  kind: TimelineKind | (string & {});
  /** Null when it is not known (recorded before the shop kept who did what). */
  actor: TimelineActor | null;
  details: Record<string, unknown>;
};

/** A key as its page shows it: the key, its product, its buyer and order, where its loader was last seen. */
export type KeyCard = KeyRecord & {
  productName: string;
  productArchived: boolean;
  buyerName: string | null;
  buyerUsername: string | null;
  lastAuthIp: string | null;
  order: { id: number; status: string; rub: number } | null;
};

export type Timeline = { lines: TimelineLine[] /** More lines exist than were read. */; more: boolean };

/** Lines read for one page: a key with a history longer than this is rare (mismatches are grouped per PC). */
const TIMELINE_LINES = 500;

export function parseActor(
  text: string | null,
  user: { first_name: string | null; last_name: string | null; username: string | null } | null,
): TimelineActor | null {
  if (text === null) return null;
  if (text === "cli" || text === "system" || text === "loader") return { role: text };
  const [prefix, rest] = [text.slice(0, text.indexOf(":")), text.slice(text.indexOf(":") + 1)];
  if (prefix === "panel") return { role: "panel", login: rest };
  if ((prefix === "bot" || prefix === "buyer") && /^\d{1,20}$/.test(rest)) {
    const name = user ? [user.first_name, user.last_name].filter(Boolean).join(" ") || null : null;
    return {
      role: prefix === "bot" ? "admin" : "buyer",
      telegramId: Number(rest),
      name,
      username: user?.username ?? null,
    };
  }
  return null;
}

type CardRow = KeyRow & {
  product_name: string;
  product_archived: boolean;
  buyer_first_name: string | null;
  buyer_last_name: string | null;
  buyer_username: string | null;
  last_auth_ip: string | null;
  order_status: string | null;
  order_rub: number | null;
};

type LineRow = {
  at: Date;
  kind: string;
  actor: string | null;
  details: Record<string, unknown>;
  first_name: string | null;
  last_name: string | null;
  username: string | null;
};

export function createKeyTimeline(deps: ShopDeps) {
  const { sql } = deps;

  /** The key with everything its page shows above the timeline, or null for a key that does not exist (any more). */
  async function card(keyId: number): Promise<KeyCard | null> {
    const [row] = await sql<CardRow[]>`
      select k.*, p.name as product_name, p.archived_at is not null as product_archived,
        u.first_name as buyer_first_name, u.last_name as buyer_last_name, u.username as buyer_username,
        o.status::text as order_status, o.amount_rub as order_rub
      from keys k
      join products p on p.id = k.product_id
      left join bot_users u on u.telegram_id = k.buyer_id
      left join orders o on o.id = k.order_id
      where k.id = ${keyId}`;
    if (!row) return null;
    return {
      ...toKeyRecord(row),
      productName: row.product_name,
      productArchived: row.product_archived,
      buyerName: [row.buyer_first_name, row.buyer_last_name].filter(Boolean).join(" ") || null,
      buyerUsername: row.buyer_username,
      lastAuthIp: row.last_auth_ip,
      order:
        row.order_id === null || row.order_status === null
          ? null
          : { id: Number(row.order_id), status: row.order_status, rub: Number(row.order_rub) },
    };
  }

  /** The key's timeline, newest first (at most TIMELINE_LINES lines). */
  async function timeline(keyId: number): Promise<Timeline> {
    // Each arm is one source; `rank` orders lines of the same instant as they happened (reserved before sold).
    const rows = await sql<LineRow[]>`
      with k as (select * from keys where id = ${keyId}),
      o as (select o.* from orders o join k on o.id = k.order_id)
      select t.at, t.kind, t.actor, t.details, u.first_name, u.last_name, u.username
      from (
        select k.created_at as at, 'added' as kind, k.added_by::text as actor,
          jsonb_build_object('origin', k.origin) as details, 0 as rank, 0::bigint as id
        from k
        union all
        select o.created_at, 'reserved', 'buyer:' || o.user_id,
          jsonb_build_object('orderId', o.id, 'days', o.days, 'rub', o.amount_rub, 'promoCode', o.promo_code), 1, o.id
        from o
        union all
        select p.received_at, 'payment', 'buyer:' || p.user_id,
          jsonb_build_object('orderId', p.order_id, 'amount', p.amount::text, 'currency', p.currency,
            'method', p.method, 'source', p.source, 'outcome', p.outcome, 'test', p.test,
            'transactionId', p.transaction_id), 2, p.id
        from payments p join o on o.id = p.order_id
        union all
        select k.sold_at, 'sold', 'buyer:' || o.user_id, jsonb_build_object('orderId', o.id), 3, o.id
        from k join o on o.id = k.order_id
        where k.state = 'sold'
        union all
        select coalesce(d.sent_at, d.created_at), 'delivery', 'system',
          jsonb_build_object('orderId', d.order_id, 'status', d.status, 'attempts', d.attempts, 'error', d.last_error),
          4, d.id
        from deliveries d join o on o.id = d.order_id
        union all
        select e.at, e.kind, e.actor::text, e.details, 10, e.id
        from key_events e where e.key_id = ${keyId}
        union all
        select m.first_at, 'mismatches', 'loader',
          jsonb_build_object('uuid', m.uuid, 'count', m.count, 'firstAt', m.first_at, 'lastAt', m.last_at, 'ips', m.ips),
          5, 0
        from key_mismatches m where m.key_id = ${keyId}
        union all
        select a.raised_at, 'sharing_alert', 'system',
          jsonb_build_object('alertId', a.id, 'uuids', a.uuids, 'mismatches', a.mismatches, 'hours', a.hours,
            'resolution', a.resolution),
          6, a.id
        from sharing_alerts a where a.key_id = ${keyId}
      ) t
      left join bot_users u
        on u.telegram_id = case when t.actor ~ '^(bot|buyer):[0-9]{1,18}$' then split_part(t.actor, ':', 2)::bigint end
      where t.at is not null
      order by t.at desc, t.rank desc, t.id desc
      limit ${TIMELINE_LINES + 1}`;
    const lines = rows.slice(0, TIMELINE_LINES).map((r) => ({
      at: r.at,
      kind: r.kind,
      actor: parseActor(r.actor, r.first_name === null && r.username === null ? null : r),
      details: r.details ?? {},
    }));
    return { lines, more: rows.length > TIMELINE_LINES };
  }

  return { card, timeline };
}
