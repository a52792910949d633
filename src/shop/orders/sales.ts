import type { ShopDeps } from "../deps.ts";
import { PAID_STATUSES } from "./lists.ts";

/**
 * The shop's day: sales are counted in Moscow days, since the shop sells in roubles and its owner counts "today" the
 * way the buyers do. (The dashboard's other figures: stock in products/stock.ts, what needs the owner in
 * `orders.attention()`.)
 */
export const SHOP_TIME_ZONE = "Europe/Moscow";

export type SalesFigure = { orders: number; rub: number };
export type Sales = { today: SalesFigure; week: SalesFigure; month: SalesFigure };
export type RevenueDay = { day: string; orders: number; rub: number };

/** Money in: the dashboard's figures for today, 7 and 30 days, and the last 30 days day by day. */
export function createSales(deps: ShopDeps) {
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

  return { sales, revenue30 };
}
