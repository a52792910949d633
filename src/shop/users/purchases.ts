import type { DurationDays } from "../../lib/durations.ts";
import type { ShopDeps } from "../deps.ts";

/** A key a buyer owns, as «Мои покупки» shows it. */
export type KeyPurchase = {
  kind: "key";
  key: string;
  productName: string;
  days: DurationDays;
  soldAt: Date;
  activatedAt: Date | null;
  expiresAt: Date | null;
  bannedAt: Date | null;
};

/**
 * A paid order that has no key: `waiting` — paid while the product was out of stock, served as soon as keys of its
 * duration arrive; `closed` — an admin settled it outside the shop (refunded it, say), so no key will come.
 */
export type OrderPurchase = {
  kind: "waiting" | "closed";
  orderId: number;
  productName: string;
  days: DurationDays;
  paidAt: Date;
};

export type Purchase = KeyPurchase | OrderPurchase;

export type PurchaseState = "not_activated" | "active" | "expired" | "banned";

export function purchaseState(p: Pick<KeyPurchase, "expiresAt" | "bannedAt">, now: Date = new Date()): PurchaseState {
  if (p.bannedAt) return "banned";
  if (!p.expiresAt) return "not_activated";
  return p.expiresAt.getTime() > now.getTime() ? "active" : "expired";
}

type PurchaseRow = {
  kind: Purchase["kind"];
  key: string | null;
  order_id: string | null;
  product_name: string;
  days: number;
  at: Date;
  activated_at: Date | null;
  expires_at: Date | null;
  banned_at: Date | null;
  total: string;
};

function toPurchase(r: PurchaseRow): Purchase {
  const days = r.days as DurationDays;
  if (r.kind === "key") {
    return {
      kind: "key",
      key: r.key!,
      productName: r.product_name,
      days,
      soldAt: r.at,
      activatedAt: r.activated_at,
      expiresAt: r.expires_at,
      bannedAt: r.banned_at,
    };
  }
  return { kind: r.kind, orderId: Number(r.order_id), productName: r.product_name, days, paidAt: r.at };
}

/** What a bot user bought: the keys sold to them (bought or gifted) and their paid orders still without a key. */
export function createPurchases(deps: ShopDeps) {
  const { sql } = deps;

  /** Newest first, at most `limit`; `total` counts them all. */
  async function of(userId: number, limit = 20): Promise<{ items: Purchase[]; total: number }> {
    const rows = await sql<PurchaseRow[]>`
      select x.*, count(*) over () as total from (
        select 'key' as kind, k.key, null::bigint as order_id, p.name as product_name, k.days, k.sold_at as at,
               k.activated_at, k.expires_at, k.banned_at, k.id as tiebreak
        from keys k join products p on p.id = k.product_id
        where k.state = 'sold'
          -- A paid key is the order's; a gift names its buyer directly. Either way it is this user's.
          and (k.buyer_id = ${userId} or k.order_id in (select id from orders where user_id = ${userId}))
        union all
        -- Paid without a key: the buyer must see that the payment arrived, right after paying.
        select case o.status when 'paid_no_stock' then 'waiting' else 'closed' end, null, o.id, p.name, o.days,
               o.paid_at, null, null, null, o.id
        from orders o join products p on p.id = o.product_id
        where o.user_id = ${userId} and o.paid_at is not null and o.status in ('paid_no_stock', 'failed')
          and not exists (select 1 from keys k where k.order_id = o.id and k.state = 'sold')
      ) x
      order by x.at desc, x.tiebreak desc
      limit ${limit}`;
    return { total: Number(rows[0]?.total ?? 0), items: rows.map(toPurchase) };
  }

  return { of };
}

export type Purchases = ReturnType<typeof createPurchases>;
