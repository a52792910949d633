import type { ShopDeps } from "../deps.ts";
import { PAID_STATUSES } from "./lists.ts";

/**
 * The shop's day: sales are counted in Moscow days, since the shop sells in roubles and its owner counts "today" the
 * way the buyers do. (The dashboard's other figures: stock in products/stock.ts, what needs the owner in
 * `orders.attention()`.)
 */
export const SHOP_TIME_ZONE = "Europe/Moscow";

/** Paid orders and what they actually charged: roubles through AnyPay, Stars through Telegram. */
export type SalesFigure = { orders: number; rub: number; stars: number };
export type Sales = { today: SalesFigure; week: SalesFigure; month: SalesFigure };
export type RevenueDay = { day: string; orders: number; rub: number };

/** Money in (what payments actually charged, not list prices): the dashboard's figures for today, 7 and 30 days, and the last 30 days day by day. */
export function createSales(deps: ShopDeps) {
  const { sql } = deps;
  const paid = [...PAID_STATUSES];

  async function sales(): Promise<Sales> {
    const [row] = await sql<Record<`${"today" | "week" | "month"}_${"n" | "rub" | "stars"}`, string>[]>`
      with bounds as (select date_trunc('day', now(), ${SHOP_TIME_ZONE}) as today)
      select
        count(*) filter (where paid_at >= today) as today_n,
        coalesce(sum(paid_rub) filter (where paid_at >= today), 0) as today_rub,
        coalesce(sum(paid_stars) filter (where paid_at >= today), 0) as today_stars,
        count(*) filter (where paid_at >= today - interval '6 days') as week_n,
        coalesce(sum(paid_rub) filter (where paid_at >= today - interval '6 days'), 0) as week_rub,
        coalesce(sum(paid_stars) filter (where paid_at >= today - interval '6 days'), 0) as week_stars,
        count(*) as month_n,
        coalesce(sum(paid_rub), 0) as month_rub,
        coalesce(sum(paid_stars), 0) as month_stars
      from orders, bounds
      where paid_at >= today - interval '29 days' and status in ${sql(paid)} and not test`;
    const r = row!;
    const figure = (p: "today" | "week" | "month"): SalesFigure => ({
      orders: Number(r[`${p}_n`]),
      rub: Number(r[`${p}_rub`]),
      stars: Number(r[`${p}_stars`]),
    });
    return { today: figure("today"), week: figure("week"), month: figure("month") };
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
        count(o.id) as orders, coalesce(sum(o.paid_rub), 0) as rub
      from days
      left join orders o on o.paid_at >= days.start and o.paid_at < days.stop
        and o.status in ${sql(paid)} and not o.test
      group by days.start
      order by days.start`;
    return rows.map((r) => ({ day: r.day, orders: Number(r.orders), rub: Number(r.rub) }));
  }

  return { sales, revenue30 };
}
