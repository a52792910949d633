import { escapeHtml } from "@kitajs/html";
import type { Attention } from "../src/shop/orders/attention.ts";
import type { OrderListItem } from "../src/shop/orders/lists.ts";
import type { RevenueDay, Sales, SalesFigure } from "../src/shop/orders/sales.ts";
import type { LowStock, StockLine } from "../src/shop/products/stock.ts";
import type { Settings } from "../src/shop/settings/settings.ts";
import { Badge, Notice } from "./components.tsx";
import { calendarDay, count, days, plural, rub, stars } from "./format.ts";
import { Layout } from "./layout.tsx";
import { OrdersTable } from "./order-parts.tsx";
import { AttentionNotices } from "./orders.tsx";
import { href, type View } from "./view.ts";

export type DashboardProps = {
  view: View;
  sales: Sales;
  revenue: RevenueDay[];
  stock: StockLine[];
  lowStock: LowStock[];
  attention: Attention;
  recent: OrderListItem[];
  settings: Pick<
    Settings,
    "botEnabled" | "maintenance" | "botToken" | "anypayMerchantId" | "anypaySecretKey" | "testPayments"
  >;
};

/**
 * The 30-day revenue as bars, drawn on the server: no chart library, readable without JavaScript. The bars stretch
 * to any width (the SVG keeps no aspect ratio); the axis labels are HTML so text is never stretched with them.
 */
export function RevenueChart({ revenue }: { revenue: RevenueDay[] }) {
  const width = 300;
  const height = 100;
  const max = Math.max(...revenue.map((d) => d.rub), 0);
  const scaleMax = niceCeiling(max);
  const slot = width / Math.max(revenue.length, 1);
  const barW = slot * 0.7;
  const total = revenue.reduce((s, d) => s + d.rub, 0);
  return (
    <figure class="chart">
      <div class="chart-plot">
        <div class="chart-y" aria-hidden="true">
          {scaleMax > 0 ? (
            <>
              <span safe>{count(scaleMax)}</span>
              <span safe>{count(Math.round(scaleMax / 2))}</span>
              <span>0</span>
            </>
          ) : (
            ""
          )}
        </div>
        <svg
          viewBox={`0 0 ${width} ${height}`}
          role="img"
          aria-labelledby="revenue-title"
          preserveAspectRatio="none"
          class="chart-bars"
        >
          <title id="revenue-title" safe>{`Выручка за 30 дней: ${rub(total)}`}</title>
          {[0, 50, 100].map((y) => (
            <line class="grid" x1="0" x2={width} y1={y} y2={y} vector-effect="non-scaling-stroke" />
          ))}
          {revenue.map((d, i) => {
            const h = scaleMax ? (d.rub / scaleMax) * height : 0;
            return (
              <rect
                x={(i * slot + (slot - barW) / 2).toFixed(2)}
                y={(height - h).toFixed(2)}
                width={barW.toFixed(2)}
                height={h.toFixed(2)}
              >
                <title safe>{`${calendarDay(d.day)}: ${rub(d.rub)}, заказов: ${d.orders}`}</title>
              </rect>
            );
          })}
        </svg>
        <div class="chart-x" aria-hidden="true">
          {revenue.map((d, i) =>
            i % 5 === 0 || i === revenue.length - 1 ? (
              <span
                class={i % 10 === 0 || i === revenue.length - 1 ? "" : "minor"}
                style={`left:${(((i + 0.5) / revenue.length) * 100).toFixed(2)}%`}
                safe
              >
                {calendarDay(d.day)}
              </span>
            ) : (
              ""
            ),
          )}
        </div>
      </div>
      <figcaption>
        {escapeHtml(
          total > 0
            ? `Выручка по дням (МСК), всего ${rub(total)}`
            : "За 30 дней продаж не было: выручка по дням появится здесь.",
        )}
      </figcaption>
    </figure>
  );
}

/** 1, 2, 5 × 10^n at or above the value, so the axis reads in round numbers. */
function niceCeiling(value: number): number {
  if (value <= 0) return 0;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** Money in over a period: roubles, and the Stars beside them when there are any. */
function SalesCard(props: { label: string; figure: SalesFigure }) {
  const { figure } = props;
  return (
    <div class="stat">
      <p class="stat-label" safe>
        {props.label}
      </p>
      <p class="stat-value" safe>
        {rub(figure.rub)}
      </p>
      {figure.stars > 0 ? <p class="stat-sub" safe>{`и ${stars(figure.stars)}`}</p> : ""}
      <p
        class="stat-sub"
        safe
      >{`${count(figure.orders)} ${plural(figure.orders, ["продажа", "продажи", "продаж"])}`}</p>
    </div>
  );
}

export function StockTable({ view, stock }: { view: View; stock: StockLine[] }) {
  if (stock.length === 0) {
    return (
      <p class="empty">
        Продуктов пока нет. <a href={href(view, "/products")}>Создать продукт</a>
      </p>
    );
  }
  return (
    <div class="table-wrap">
      <table class="table cards stock">
        <thead>
          <tr>
            <th>Продукт</th>
            {[1, 7, 14, 30, 90].map((d) => (
              <th class="num" safe>
                {days(d)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {stock.map((line) => (
            <tr class={line.archived ? "archived" : ""}>
              <td data-label="Продукт">
                <a href={href(view, `/products/${line.productId}`)} safe>
                  {line.productName}
                </a>
                {line.archived ? <Badge tone="muted">в архиве</Badge> : ""}
              </td>
              {line.durations.map((d) => (
                <td class={`num ${d.rub !== null && d.available === 0 ? "out" : ""}`} data-label={days(d.days)}>
                  <strong safe>{count(d.available)}</strong>
                  <span class="sub" safe>
                    {d.rub === null ? "не продаётся" : rub(d.rub)}
                  </span>
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function RecentOrders({ view, orders }: { view: View; orders: OrderListItem[] }) {
  if (orders.length === 0) return <p class="empty">Заказов пока нет.</p>;
  return (
    <OrdersTable view={view} orders={orders} createdLabel="Когда" buyer="name" linkProduct={false} payment="none" />
  );
}

export function DashboardPage(props: DashboardProps) {
  const { view, settings } = props;
  return (
    <Layout view={view} title="Главная" tab="dashboard">
      <h1>Главная</h1>
      <div class="notices">
        {!settings.botToken ? (
          <Notice kind="warn">
            Токен бота не задан — бот не работает. <a href={href(view, "/settings")}>Задать токен</a>
          </Notice>
        ) : !settings.botEnabled ? (
          <Notice kind="warn">
            Бот выключен: покупатели видят «Бот временно отключён». <a href={href(view, "/settings")}>Включить</a>
          </Notice>
        ) : settings.maintenance ? (
          <Notice kind="warn">
            Идут технические работы: покупатели не могут купить. <a href={href(view, "/settings")}>Настройки</a>
          </Notice>
        ) : (
          ""
        )}
        {!settings.anypayMerchantId || !settings.anypaySecretKey ? (
          <Notice kind="warn">
            AnyPay не настроен — оплата невозможна. <a href={href(view, "/settings")}>Настроить</a>
          </Notice>
        ) : (
          ""
        )}
        <AttentionNotices view={view} attention={props.attention} />
      </div>
      <section class="stats" aria-label="Продажи">
        <SalesCard label="Сегодня" figure={props.sales.today} />
        <SalesCard label="7 дней" figure={props.sales.week} />
        <SalesCard label="30 дней" figure={props.sales.month} />
      </section>
      <section class="card">
        <h2>Выручка за 30 дней</h2>
        <RevenueChart revenue={props.revenue} />
      </section>
      <section class="card">
        <h2>Ключи в наличии</h2>
        {props.lowStock.length > 0 ? (
          <ul class="low-stock">
            {props.lowStock.map((l) => (
              <li>
                <a href={href(view, `/products/${l.productId}`)}>
                  <span safe>{l.productName}</span> {escapeHtml(days(l.days))}
                </a>
                {l.available === 0 ? (
                  <Badge tone="bad">нет ключей — не продаётся</Badge>
                ) : (
                  <Badge tone="warn">{escapeHtml(`осталось ${count(l.available)}`)}</Badge>
                )}
              </li>
            ))}
          </ul>
        ) : (
          ""
        )}
        <StockTable view={view} stock={props.stock} />
      </section>
      <section class="card">
        <h2>
          Последние заказы{" "}
          <a class="more" href={href(view, "/orders")}>
            все заказы →
          </a>
        </h2>
        <RecentOrders view={view} orders={props.recent} />
      </section>
    </Layout>
  );
}
