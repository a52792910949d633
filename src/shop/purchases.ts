import type { DurationDays } from "../lib/durations.ts";
import type { ShopDeps } from "./deps.ts";

/** A key a buyer owns, as «Мои покупки» shows it. */
export type Purchase = {
  key: string;
  productName: string;
  days: DurationDays;
  soldAt: Date;
  activatedAt: Date | null;
  expiresAt: Date | null;
  bannedAt: Date | null;
};

export type PurchaseState = "not_activated" | "active" | "expired" | "banned";

export function purchaseState(p: Pick<Purchase, "expiresAt" | "bannedAt">, now: Date = new Date()): PurchaseState {
  if (p.bannedAt) return "banned";
  if (!p.expiresAt) return "not_activated";
  return p.expiresAt.getTime() > now.getTime() ? "active" : "expired";
}

type PurchaseRow = {
  key: string;
  product_name: string;
  days: number;
  sold_at: Date;
  activated_at: Date | null;
  expires_at: Date | null;
  banned_at: Date | null;
};

/** The keys sold to a bot user (bought or gifted), newest first. */
export function createPurchases(deps: ShopDeps) {
  const { sql } = deps;

  async function of(userId: number, limit = 20): Promise<{ items: Purchase[]; total: number }> {
    const rows = await sql<(PurchaseRow & { total: string })[]>`
      select k.key, p.name as product_name, k.days, k.sold_at, k.activated_at, k.expires_at, k.banned_at,
             count(*) over () as total
      from keys k join products p on p.id = k.product_id
      where k.state = 'sold'
        -- A paid key is the order's; a gift names its buyer directly. Either way it is this user's.
        and (k.buyer_id = ${userId} or k.order_id in (select id from orders where user_id = ${userId}))
      order by k.sold_at desc, k.id desc
      limit ${limit}`;
    return {
      total: Number(rows[0]?.total ?? 0),
      items: rows.map((r) => ({
        key: r.key,
        productName: r.product_name,
        days: r.days as DurationDays,
        soldAt: r.sold_at,
        activatedAt: r.activated_at,
        expiresAt: r.expires_at,
        bannedAt: r.banned_at,
      })),
    };
  }

  return { of };
}

export type Purchases = ReturnType<typeof createPurchases>;
