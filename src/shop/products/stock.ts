import { DURATIONS, type DurationDays, isDuration } from "../../lib/durations.ts";
import type { ShopDeps } from "../deps.ts";

/** A duration on sale with fewer available keys than this is flagged on the dashboard. */
export const LOW_STOCK = 5;

export type StockLine = {
  productId: number;
  productName: string;
  archived: boolean;
  /** Per duration: available keys, and the price (null = not for sale). */
  durations: { days: DurationDays; available: number; reserved: number; sold: number; rub: number | null }[];
};

export type LowStock = { productId: number; productName: string; days: DurationDays; available: number };

/** The stock of keys per product and duration, for the dashboard and the product pages. */
export function createStock(deps: ShopDeps) {
  const { sql } = deps;

  /**
   * Keys per product and duration by state, with the prices (of one product when `productId` is given, for its
   * page). The counts come from key_counts (sql/0007_key_counts.sql), which triggers on keys keep: a few rows per
   * product, however many keys it has — counting a million keys took 60–100 ms on every product page.
   */
  async function stock(productId?: number): Promise<StockLine[]> {
    const one = () => (productId === undefined ? sql`true` : sql`product_id = ${productId}`);
    const [products, counted, prices] = await Promise.all([
      sql<{ id: string; name: string; archived: boolean }[]>`
        select id, name, archived_at is not null as archived from products
        where ${productId === undefined ? sql`true` : sql`id = ${productId}`}
        order by archived_at nulls first, name`,
      sql<{ product_id: string; days: number; state: "available" | "reserved" | "sold"; n: string }[]>`
        select product_id, days, state, sum(n) as n from key_counts where ${one()} group by 1, 2, 3`,
      sql<{ product_id: string; days: number; rub: number }[]>`
        select product_id, days, rub from prices where rub > 0 and ${one()}`,
    ]);
    const countOf = new Map<string, { available: number; reserved: number; sold: number }>();
    for (const r of counted) {
      const key = `${r.product_id}:${r.days}`;
      const entry = countOf.get(key) ?? { available: 0, reserved: 0, sold: 0 };
      entry[r.state] = Number(r.n);
      countOf.set(key, entry);
    }
    const priceOf = new Map(prices.map((p) => [`${p.product_id}:${p.days}`, p.rub]));
    return products.map((p) => ({
      productId: Number(p.id),
      productName: p.name,
      archived: p.archived,
      durations: DURATIONS.map((days) => {
        const c = countOf.get(`${p.id}:${days}`);
        return {
          days,
          available: c?.available ?? 0,
          reserved: c?.reserved ?? 0,
          sold: c?.sold ?? 0,
          rub: priceOf.get(`${p.id}:${days}`) ?? null,
        };
      }),
    }));
  }

  /** Durations on sale (priced, product not archived) with fewer than LOW_STOCK available keys. */
  function lowStock(lines: StockLine[]): LowStock[] {
    const out: LowStock[] = [];
    for (const line of lines) {
      if (line.archived) continue;
      for (const d of line.durations) {
        if (d.rub !== null && d.available < LOW_STOCK && isDuration(d.days)) {
          out.push({ productId: line.productId, productName: line.productName, days: d.days, available: d.available });
        }
      }
    }
    return out;
  }

  return { stock, lowStock };
}
