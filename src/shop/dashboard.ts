import { DURATIONS, type DurationDays, isDuration } from "../lib/durations.ts";
import type { ShopDeps } from "./deps.ts";
import { PAID_STATUSES } from "./listings.ts";

/**
 * The panel's front page in numbers: money in today / 7 / 30 days, stock per product and duration, what is about
 * to run out (what needs the owner is `orders.attention()`). Days are Moscow days: the shop sells in roubles and
 * its owner counts "today" the way the buyers do.
 */
export const SHOP_TIME_ZONE = "Europe/Moscow";

/** A duration on sale with fewer available keys than this is flagged on the dashboard. */
export const LOW_STOCK = 5;

export type SalesFigure = { orders: number; rub: number };
export type Sales = { today: SalesFigure; week: SalesFigure; month: SalesFigure };
export type RevenueDay = { day: string; orders: number; rub: number };

export type StockLine = {
  productId: number;
  productName: string;
  archived: boolean;
  /** Per duration: available keys, and the price (null = not for sale). */
  durations: { days: DurationDays; available: number; reserved: number; sold: number; rub: number | null }[];
};

export type LowStock = { productId: number; productName: string; days: DurationDays; available: number };

export function createDashboard(deps: ShopDeps) {
  const { sql } = deps;
  const paid = [...PAID_STATUSES];

  async function sales(): Promise<Sales> {
    const [row] = await sql<
      { today_n: string; today_rub: string; week_n: string; week_rub: string; month_n: string; month_rub: string }[]
    >`
      with bounds as (select date_trunc('day', now(), ${SHOP_TIME_ZONE}) as today)
      select
        count(*) filter (where paid_at >= today) as today_n,
        coalesce(sum(amount_rub) filter (where paid_at >= today), 0) as today_rub,
        count(*) filter (where paid_at >= today - interval '6 days') as week_n,
        coalesce(sum(amount_rub) filter (where paid_at >= today - interval '6 days'), 0) as week_rub,
        count(*) as month_n,
        coalesce(sum(amount_rub), 0) as month_rub
      from orders, bounds
      where paid_at >= today - interval '29 days' and status in ${sql(paid)} and not test`;
    const r = row!;
    return {
      today: { orders: Number(r.today_n), rub: Number(r.today_rub) },
      week: { orders: Number(r.week_n), rub: Number(r.week_rub) },
      month: { orders: Number(r.month_n), rub: Number(r.month_rub) },
    };
  }

  /** Revenue of each of the last 30 Moscow days, oldest first, days without sales included as zero. */
  async function revenue30(): Promise<RevenueDay[]> {
    const rows = await sql<{ day: string; orders: string; rub: string }[]>`
      with days as (
        select d as start, d + interval '1 day' as stop
        from generate_series(
          date_trunc('day', now(), ${SHOP_TIME_ZONE}) - interval '29 days',
          date_trunc('day', now(), ${SHOP_TIME_ZONE}),
          interval '1 day') as d
      )
      select to_char(days.start at time zone ${SHOP_TIME_ZONE}, 'YYYY-MM-DD') as day,
        count(o.id) as orders, coalesce(sum(o.amount_rub), 0) as rub
      from days
      left join orders o on o.paid_at >= days.start and o.paid_at < days.stop
        and o.status in ${sql(paid)} and not o.test
      group by days.start
      order by days.start`;
    return rows.map((r) => ({ day: r.day, orders: Number(r.orders), rub: Number(r.rub) }));
  }

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

  return { sales, revenue30, stock, lowStock };
}

export type Dashboard = ReturnType<typeof createDashboard>;
