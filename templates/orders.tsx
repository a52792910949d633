import { escapeHtml } from "@kitajs/html";
import type { Page } from "../src/shop/lists.ts";
import { type Attention, DUPLICATE_WINDOW_DAYS, LATE_DELIVERY_MINUTES } from "../src/shop/orders/attention.ts";
import type { OrderListItem } from "../src/shop/orders/lists.ts";
import type { OrderStatus } from "../src/shop/orders/orders.ts";
import { REFUSED_WINDOW_DAYS } from "../src/shop/orders/refused-notifications.ts";
import { Notice, ORDER_STATUS_LABELS, OrderLink, Pager } from "./components.tsx";
import { count, when } from "./format.ts";
import { Layout } from "./layout.tsx";
import { OrdersTable } from "./order-parts.tsx";
import { href, type View } from "./view.ts";

export type OrdersQuery = { status: OrderStatus | undefined; q: string };

/** What needs the owner, as notices linking to the orders concerned (the dashboard and the orders tab show them). */
export function AttentionNotices({ view, attention }: { view: View; attention: Attention }) {
  const { paidNoStock, undelivered, late, duplicatePayments, refusedNotifications } = attention;
  return (
    <>
      {paidNoStock > 0 ? (
        <Notice kind="error">
          <a href={href(view, "/orders", { status: "paid_no_stock" })}>
            {escapeHtml(`Оплачены, но ключей нет: ${count(paidNoStock)}`)}
          </a>
          {
            " — добавьте ключи этого товара и срока (покупатель получит ключ сам) или, вернув деньги, закройте заказ на его странице."
          }
        </Notice>
      ) : (
        ""
      )}
      {undelivered > 0 ? (
        <Notice kind="error">
          <a href={href(view, "/orders", { status: "paid" })}>{escapeHtml(`Не доставлены: ${count(undelivered)}`)}</a>
          {
            " — покупатель заблокировал бота или Telegram не принял сообщение. На странице заказа: «Отправить ещё раз» или передайте ключ вручную."
          }
        </Notice>
      ) : (
        ""
      )}
      {late > 0 ? (
        <Notice kind="warn">
          <a href={href(view, "/orders", { status: "paid" })}>
            {escapeHtml(`Оплачены более ${LATE_DELIVERY_MINUTES} минут назад и ещё не доставлены: ${count(late)}`)}
          </a>
          {" — бот повторяет отправку; проверьте токен бота и журнал."}
        </Notice>
      ) : (
        ""
      )}
      {refusedNotifications.length > 0 ? (
        <Notice kind="error">
          {escapeHtml(
            `AnyPay сообщал об оплате, а магазин отклонил уведомление (за ${REFUSED_WINDOW_DAYS} дней): ` +
              `${count(refusedNotifications.length)}. Покупатель мог заплатить и ничего не получить: исправьте причину ` +
              "— AnyPay повторит уведомление — или выдайте ключ вручную.",
          )}
          <div class="table-wrap">
            <table class="compact">
              <thead>
                <tr>
                  <th>Последняя попытка</th>
                  <th>Причина</th>
                  <th>Заказ</th>
                  <th>Транзакция</th>
                  <th>Сумма</th>
                  <th>Попыток</th>
                </tr>
              </thead>
              <tbody>
                {refusedNotifications.map((r) => (
                  <tr>
                    <td safe>{when(r.lastAt)}</td>
                    <td safe>{r.reason}</td>
                    <td>
                      {r.payId && /^\d{1,15}$/.test(r.payId) ? (
                        <OrderLink view={view} id={Number(r.payId)} />
                      ) : (
                        <span safe>{r.payId ?? "—"}</span>
                      )}
                    </td>
                    <td safe>{r.transactionId ?? "—"}</td>
                    <td>{escapeHtml(r.amount ? `${r.amount} ${r.currency ?? ""}`.trim() : "—")}</td>
                    <td safe>{String(r.tries)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Notice>
      ) : (
        ""
      )}
      {duplicatePayments.length > 0 ? (
        <Notice kind="warn">
          {escapeHtml(`Оплачены дважды (за ${DUPLICATE_WINDOW_DAYS} дней): `)}
          {duplicatePayments.map((d, i) => (
            <>
              {i > 0 ? ", " : ""}
              <OrderLink view={view} id={d.orderId} />
            </>
          ))}
          {
            " — второй платёж ничего не выдал: верните его в AnyPay (оплату звёздами — кнопкой «Вернуть звёзды» на странице заказа)."
          }
        </Notice>
      ) : (
        ""
      )}
    </>
  );
}

export function OrdersList(props: { view: View; query: OrdersQuery; page: Page<OrderListItem> }) {
  const { view, query, page } = props;
  const link = (cursor: { after?: string; before?: string }) =>
    href(view, "/orders", { status: query.status, q: query.q, ...cursor });
  return (
    <div id="orders-list">
      {page.rows.length === 0 ? (
        <p class="empty">Заказов нет.</p>
      ) : (
        <OrdersTable
          view={view}
          orders={page.rows}
          createdLabel="Создан"
          buyer="nameAndId"
          linkProduct
          payment="full"
        />
      )}
      <Pager prev={page.prev} next={page.next} hrefFor={link} target="#orders-list" />
    </div>
  );
}

export function OrdersPage(props: {
  view: View;
  query: OrdersQuery;
  page: Page<OrderListItem>;
  counts: Record<OrderStatus, number>;
  attention: Attention;
}) {
  const { view, query, counts } = props;
  const total = Object.values(counts).reduce((s, n) => s + n, 0);
  const chip = (status: OrderStatus | undefined, label: string, n: number) => (
    <a
      href={href(view, "/orders", { status, q: query.q })}
      class={`chip ${status === query.status ? "active" : ""} ${status === "paid_no_stock" && n > 0 ? "alert" : ""}`}
      aria-current={status === query.status ? "true" : undefined}
    >
      <span safe>{label}</span>{" "}
      <span class="chip-count" safe>
        {count(n)}
      </span>
    </a>
  );
  return (
    <Layout view={view} title="Заказы" tab="orders">
      <h1>Заказы</h1>
      <div class="notices">
        <AttentionNotices view={view} attention={props.attention} />
      </div>
      <nav class="chips" aria-label="Статус заказа">
        {chip(undefined, "Все", total)}
        {(Object.keys(ORDER_STATUS_LABELS) as OrderStatus[]).map((s) => chip(s, ORDER_STATUS_LABELS[s], counts[s]))}
      </nav>
      <form
        class="filters"
        method="get"
        action={href(view, "/orders")}
        hx-get={href(view, "/orders")}
        hx-trigger="input delay:300ms, submit"
        hx-target="#orders-list"
        hx-swap="outerHTML"
        hx-push-url="true"
        hx-sync="this:replace"
      >
        <input type="hidden" name="status" value={query.status ?? ""} />
        <label class="grow">
          <span class="visually-hidden">Поиск</span>
          <input
            type="search"
            name="q"
            value={query.q}
            inputmode="numeric"
            maxlength="16"
            placeholder="№ заказа или Telegram ID"
            title="Номер заказа или Telegram ID покупателя"
            autocomplete="off"
          />
        </label>
        <noscript>
          <button type="submit">Найти</button>
        </noscript>
      </form>
      <OrdersList view={view} query={query} page={props.page} />
    </Layout>
  );
}
