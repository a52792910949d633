import type { DurationDays } from "../../lib/durations.ts";
import type { ShopDeps } from "../deps.ts";

/** A key a buyer owns, as «Мои покупки» shows it. */
export type KeyPurchase = {
  kind: "key";
  keyId: number;
  key: string;
  /** Days renewals added before the first activation: the clock will run `days + renewedDays`. */
  renewedDays: number;
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
  /** Null on the one row of a page past the end: it carries only the total. */
  kind: Purchase["kind"] | null;
  key_id: string | null;
  key: string | null;
  renewed_days: number | null;
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
      keyId: Number(r.key_id),
      key: r.key!,
      renewedDays: r.renewed_days ?? 0,
      productName: r.product_name,
      days,
      soldAt: r.at,
      activatedAt: r.activated_at,
      expiresAt: r.expires_at,
      bannedAt: r.banned_at,
    };
  }
  return {
    kind: r.kind as OrderPurchase["kind"],
    orderId: Number(r.order_id),
    productName: r.product_name,
    days,
    paidAt: r.at,
  };
}

/** What a bot user bought: the keys sold to them (bought or gifted) and their paid orders still without a key. */
export function createPurchases(deps: ShopDeps) {
  const { sql } = deps;

  /**
   * Newest first, `limit` from `offset` (one page of «Мои покупки»); `total` counts them all. A page past the end
   * (an old «Далее» after purchases went away) is empty with the true total, so the caller can show the last page.
   */
  async function of(
    userId: number,
    page: { offset?: number; limit?: number } = {},
  ): Promise<{ items: Purchase[]; total: number }> {
    const limit = page.limit ?? 20;
    const offset = page.offset ?? 0;
    const rows = await sql<PurchaseRow[]>`
      with x as (
        select 'key' as kind, k.id as key_id, k.key, k.renewed_days, null::bigint as order_id,
               p.name as product_name, k.days, k.sold_at as at, k.activated_at, k.expires_at, k.banned_at,
               k.id as tiebreak
        from keys k join products p on p.id = k.product_id
        where k.state = 'sold'
          -- A paid key is the order's; a gift names its buyer directly. Either way it is this user's.
          and (k.buyer_id = ${userId} or k.order_id in (select id from orders where user_id = ${userId}))
        union all
        -- Paid without a key: the buyer must see that the payment arrived, right after paying.
        select case o.status when 'paid_no_stock' then 'waiting' else 'closed' end, null, null, null, o.id, p.name,
               o.days, o.paid_at, null, null, null, o.id
        from orders o join products p on p.id = o.product_id
        where o.user_id = ${userId} and o.paid_at is not null and o.status in ('paid_no_stock', 'failed')
          and o.kind = 'purchase'
          and not exists (select 1 from keys k where k.order_id = o.id and k.state = 'sold')
      )
      select y.*, t.total from (select count(*) as total from x) t
      left join lateral (select * from x order by x.at desc, x.tiebreak desc limit ${limit} offset ${offset}) y on true`;
    const total = Number(rows[0]?.total ?? 0);
    return { total, items: rows.filter((r) => r.kind !== null).map(toPurchase) };
  }

  return { of };
}

export type Purchases = ReturnType<typeof createPurchases>;
