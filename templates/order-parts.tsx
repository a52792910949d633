import { escapeHtml } from "@kitajs/html";
import type { OrderListItem } from "../src/shop/orders/lists.ts";
import { Badge, DELIVERY_LABELS, OrderLink, OrderStatusBadge, PAID_BY_LABELS, ProductDuration } from "./components.tsx";
import { personName, rub, when } from "./format.ts";
import { href, type View } from "./view.ts";

/**
 * A table of orders, written once for the three places that list them: the orders tab (every detail), a buyer's
 * page (no buyer column) and the dashboard's latest orders (the essentials). What differs between them is a prop.
 */
export type OrdersTableProps = {
  view: View;
  orders: OrderListItem[];
  /** The heading of the creation time ("Когда" reads better in the dashboard's short list). */
  createdLabel: "Создан" | "Когда";
  /** Who bought: left out on the buyer's own page; the orders tab adds the Telegram ID under the name. */
  buyer: "none" | "name" | "nameAndId";
  /** The product name links to the product. */
  linkProduct: boolean;
  /**
   * "paidAt": when it was paid. "full": the orders tab's payment (with the AnyPay transaction), the delivery and its
   * key, why a closed order was closed, and rows that need the owner highlighted.
   */
  payment: "none" | "paidAt" | "full";
};

/** A row the owner must act on: paid without a key, or a delivery that stopped. */
function needsOwner(o: OrderListItem): boolean {
  return o.status === "paid_no_stock" || o.deliveryStatus === "blocked" || o.deliveryStatus === "failed";
}

export function OrdersTable(props: OrdersTableProps) {
  const { view, buyer, payment } = props;
  const full = payment === "full";
  return (
    <div class="table-wrap">
      <table class="table cards">
        <thead>
          <tr>
            <th>№</th>
            <th>{props.createdLabel}</th>
            {buyer === "none" ? "" : <th>Покупатель</th>}
            <th>Товар</th>
            <th class="num">Сумма</th>
            <th>Статус</th>
            {full ? (
              <>
                <th>Оплата</th>
                <th>Выдача</th>
              </>
            ) : payment === "paidAt" ? (
              <th>Оплачен</th>
            ) : (
              ""
            )}
          </tr>
        </thead>
        <tbody>
          {props.orders.map((o) => (
            <tr class={full ? (needsOwner(o) ? "attention" : "") : undefined}>
              <td data-label="№">
                <OrderLink view={view} id={o.id} />
              </td>
              <td data-label={props.createdLabel} safe>
                {when(o.createdAt)}
              </td>
              {buyer === "none" ? (
                ""
              ) : (
                <td data-label="Покупатель">
                  <a href={href(view, `/users/${o.userId}`)} safe>
                    {personName({ firstName: o.userName, username: o.username })}
                  </a>
                  {buyer === "nameAndId" ? (
                    <span class="sub" safe>
                      {String(o.userId)}
                    </span>
                  ) : (
                    ""
                  )}
                </td>
              )}
              <td data-label="Товар">
                <ProductDuration
                  view={view}
                  productId={o.productId}
                  productName={o.productName}
                  days={o.days}
                  link={props.linkProduct}
                />
                {o.kind === "renewal" ? <Badge tone="info">продление</Badge> : ""}
              </td>
              <td data-label="Сумма" class="num">
                <OrderAmount order={o} />
              </td>
              <td data-label="Статус">
                <OrderStatusBadge status={o.status} test={o.test} />
                {full && o.failure ? (
                  <span class="sub error-text" safe>
                    {o.failure}
                  </span>
                ) : (
                  ""
                )}
              </td>
              {full ? <PaymentCells view={view} order={o} /> : ""}
              {payment === "paidAt" ? (
                <td data-label="Оплачен" safe>
                  {when(o.paidAt)}
                </td>
              ) : (
                ""
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/**
 * What an order costs, and what paid it: «1 500 ₽» with the code that took its discount, «150 ⭐» for an order paid
 * in Telegram Stars (its rouble price was not charged).
 */
export function OrderAmount({ order: o }: { order: OrderListItem }) {
  const stars = o.paidBy === "telegram_stars" && o.paidStars !== null;
  return (
    <>
      {escapeHtml(stars ? `${o.paidStars} ⭐` : rub(o.amountRub))}
      {o.promoCode ? <span class="sub mono" safe>{`${o.promoCode} −${rub(o.discountRub)}`}</span> : ""}
    </>
  );
}

/** The orders tab's payment and delivery cells: the transaction, what the delivery is waiting on, the key sold. */
function PaymentCells({ view, order: o }: { view: View; order: OrderListItem }) {
  return (
    <>
      <td data-label="Оплата">
        {escapeHtml(when(o.paidAt))}
        {o.paidBy ? (
          <span class="sub" safe>
            {PAID_BY_LABELS[o.paidBy]}
          </span>
        ) : (
          ""
        )}
        {o.transactionId ? (
          <span class="sub mono" safe>
            {o.transactionId}
          </span>
        ) : (
          ""
        )}
      </td>
      <td data-label="Выдача">
        {escapeHtml(when(o.deliveredAt))}
        {o.deliveryStatus && o.deliveryStatus !== "sent" ? (
          <span class={`sub ${o.deliveryStatus === "pending" ? "" : "error-text"}`} safe>
            {DELIVERY_LABELS[o.deliveryStatus]}
          </span>
        ) : (
          ""
        )}
        {o.keyId !== null ? (
          <a class="sub" href={href(view, `/keys/${o.keyId}`)}>
            ключ
          </a>
        ) : (
          ""
        )}
      </td>
    </>
  );
}
