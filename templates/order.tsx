import { escapeHtml } from "@kitajs/html";
import type { KeyListItem } from "../src/shop/keys/lists.ts";
import type { DeliveryStatus, DeliveryView } from "../src/shop/orders/deliveries.ts";
import type { Order } from "../src/shop/orders/orders.ts";
import { type PaymentRecord, starsRefundable } from "../src/shop/orders/payments.ts";
import type { UserEvent } from "../src/shop/users/lists.ts";
import type { BotUser } from "../src/shop/users/users.ts";
import {
  Badge,
  CsrfField,
  DELIVERY_LABELS,
  DISABLE_WHILE_SENDING,
  Field,
  Notice,
  OrderStatusBadge,
  PAID_BY_LABELS,
  ProductDuration,
  postTo,
} from "./components.tsx";
import { EventLog } from "./events.tsx";
import { count, personName, rub, stars, when, wholeStars } from "./format.ts";
import { Layout } from "./layout.tsx";
import { keyStateBadge } from "./users.tsx";
import { type FieldErrors, href, type View } from "./view.ts";

/** One order with everything the owner needs to settle it: buyer, key, delivery, payments, log, and the actions. */

const DELIVERY_TONE: Record<DeliveryStatus, "info" | "ok" | "bad"> = {
  pending: "info",
  sent: "ok",
  blocked: "bad",
  failed: "bad",
};

const OUTCOME_LABELS: Record<PaymentRecord["outcome"], string> = {
  applied: "зачтён",
  no_stock: "зачтён, ключей не было",
  duplicate: "повторная оплата — верните в AnyPay",
};

/** A ledger row's outcome; a second payment in Stars is given back here, not in AnyPay. */
function outcomeLabel(p: PaymentRecord): string {
  if (p.outcome === "duplicate" && p.source === "telegram_stars") return "повторная оплата — верните звёзды";
  return OUTCOME_LABELS[p.outcome];
}

/** What the payment actually charged: roubles through AnyPay, Stars through Telegram, nothing for a code or a test. */
function charged(order: Order): string {
  if (order.paidBy === "telegram_stars") return stars(order.paidStars ?? 0);
  return rub(order.paidRub ?? 0);
}

/** How a ledger row was paid: AnyPay's method (card, sbp…), Telegram Stars, the code that covered it, a test. */
function paymentMethod(p: PaymentRecord): string {
  switch (p.source) {
    case "anypay":
      return p.method ?? "—";
    case "telegram_stars":
      return "Telegram Stars";
    case "promo":
      return `промокод ${p.method ?? ""}`.trim();
    case "test":
      return "кнопка в боте";
  }
}

/** Deliveries an admin can send again: the job has stopped trying. */
export function canRetry(delivery: DeliveryView | null): boolean {
  return delivery?.status === "blocked" || delivery?.status === "failed";
}

export type OrderViewProps = {
  view: View;
  order: Order;
  buyer: BotUser | null;
  /** The key the order holds (`key` is taken by JSX). */
  orderKey: KeyListItem | null;
  delivery: DeliveryView | null;
  payments: PaymentRecord[];
  events: UserEvent[];
  /** The outcome of the action just taken. */
  notice?: { kind: "ok" | "error"; text: string } | undefined;
  /** The close form after a refused submit: what was typed and what is wrong with it. */
  close?: { note: string; errors: FieldErrors } | undefined;
};

function KeyFacts({ view, k }: { view: View; k: KeyListItem }) {
  return (
    <dl class="facts">
      <dt>Ключ</dt>
      <dd>
        <a class="mono" href={href(view, `/keys/${k.id}`)} safe>
          {k.key}
        </a>
      </dd>
      <dt>Состояние</dt>
      <dd>{k.state === "sold" ? keyStateBadge(k) : <Badge tone="muted">зарезервирован для заказа</Badge>}</dd>
      <dt>HWID</dt>
      <dd class="mono" safe>
        {k.hwid ?? "—"}
      </dd>
      <dt>Активирован</dt>
      <dd safe>{when(k.activatedAt)}</dd>
      <dt>Истекает</dt>
      <dd>{escapeHtml(k.expiresAt ? when(k.expiresAt) : k.state === "sold" ? "с первой активации" : "—")}</dd>
      {k.note ? (
        <>
          <dt>Заметка</dt>
          <dd safe>{k.note}</dd>
        </>
      ) : (
        ""
      )}
    </dl>
  );
}

/**
 * A form posting one of the order's actions: htmx swaps the whole order with the answer (the notice and the new
 * state); without JavaScript the browser gets the whole page. The button is disabled while it posts.
 */
function orderAction(view: View, orderId: number, name: "retry" | "close" | "refund-stars") {
  const action = href(view, `/orders/${orderId}/${name}`);
  return { ...postTo(action, "#order"), ...DISABLE_WHILE_SENDING };
}

function DeliveryCard(props: { view: View; order: Order; buyer: BotUser | null; delivery: DeliveryView | null }) {
  const { view, order, buyer, delivery } = props;
  return (
    <section class="card stack" id="delivery">
      <h2>Доставка</h2>
      {!delivery ? (
        <p class="empty">
          {order.status === "pending" || order.status === "expired"
            ? "Заказ не оплачен — доставлять нечего."
            : "Доставки нет: ключ ещё не продан этому заказу."}
        </p>
      ) : (
        <dl class="facts">
          <dt>Статус</dt>
          <dd>
            <Badge tone={DELIVERY_TONE[delivery.status]}>{escapeHtml(DELIVERY_LABELS[delivery.status])}</Badge>
          </dd>
          <dt>Попыток</dt>
          <dd safe>{count(delivery.attempts)}</dd>
          <dt>Последняя ошибка</dt>
          <dd class="mono" safe>
            {delivery.lastError ?? "—"}
          </dd>
          <dt>Поставлена</dt>
          <dd safe>{when(delivery.createdAt)}</dd>
          <dt>Отправлена</dt>
          <dd safe>{when(delivery.sentAt)}</dd>
        </dl>
      )}
      {canRetry(delivery) ? (
        <form {...orderAction(view, order.id, "retry")} class="stack">
          <CsrfField view={view} />
          <p class="hint">
            {buyer?.blockedAt
              ? "Покупатель заблокировал бота: сообщение дойдёт, только если он его разблокировал. Если он напишет боту, доставка повторится сама."
              : "Бот отправит ключ (и билд) ещё раз в течение нескольких секунд."}
          </p>
          <div class="actions">
            <button type="submit" class="primary">
              Отправить ещё раз
            </button>
          </div>
        </form>
      ) : (
        ""
      )}
    </section>
  );
}

function CloseForm(props: { view: View; order: Order; close?: OrderViewProps["close"] }) {
  const { view, order } = props;
  const errors = props.close?.errors ?? {};
  return (
    <form
      {...orderAction(view, order.id, "close")}
      hx-confirm="Закрыть заказ? Новые ключи этому покупателю больше не придут."
      class="card stack"
      id="close"
    >
      <h2>Покупатель ждёт ключ</h2>
      <p>
        Заказ оплачен, но ключей этого товара и срока не осталось. Добавьте ключи — покупатель получит первый
        автоматически. Если вы вернули деньги (или отдали ключ вручную), закройте заказ, чтобы новый ключ не ушёл ему.
      </p>
      <CsrfField view={view} />
      <Field
        label="Что сделано"
        name="note"
        error={errors.note}
        hint="Например: «деньги возвращены в AnyPay 12.05». Видно в журнале покупателя."
      >
        <textarea
          id="f-note"
          name="note"
          rows="2"
          maxlength="500"
          required
          aria-invalid={errors.note ? "true" : undefined}
          aria-describedby={errors.note ? "e-note" : undefined}
          safe
        >
          {props.close?.note ?? ""}
        </textarea>
      </Field>
      <div class="actions">
        <button type="submit" class="danger">
          Закрыть заказ (деньги возвращены)
        </button>
      </div>
    </form>
  );
}

/**
 * «Вернуть звёзды» under a Stars payment that bought nothing (docs/panel.md#telegram-stars): refundStarPayment, once
 * however often it is pressed.
 */
function RefundStarsForm(props: { view: View; order: Order; payment: PaymentRecord }) {
  const { view, order, payment } = props;
  return (
    <form
      {...orderAction(view, order.id, "refund-stars")}
      hx-confirm={`Вернуть покупателю ${wholeStars(payment.amount)} ⭐? Telegram вернёт звёзды сразу, отменить возврат нельзя.`}
    >
      <CsrfField view={view} />
      <input type="hidden" name="transaction" value={payment.transactionId} />
      <button type="submit" class="danger">
        Вернуть звёзды
      </button>
    </form>
  );
}

/** What became of a Stars payment given back: when, and who did it. */
const refundedLine = (p: PaymentRecord) =>
  `звёзды возвращены ${when(p.refundedAt)}${p.refundedBy ? ` (${p.refundedBy})` : ""}`;

/** `keyBanned`: the order renews a key that was banned before the renewal was paid (and still is). */
function PaymentsCard(props: { view: View; order: Order; payments: PaymentRecord[]; keyBanned: boolean }) {
  const { view, order, payments, keyBanned } = props;
  const refundable = payments.filter((p) => starsRefundable(order, p, keyBanned));
  return (
    <section class="card" id="payments">
      <h2>Платежи</h2>
      {payments.length > 1 ? (
        <Notice kind="warn">
          {escapeHtml(
            `Платежей: ${payments.length}. Заказ оплачен больше одного раза — лишнее верните (AnyPay — в кабинете AnyPay, звёзды — кнопкой ниже) или выдайте ключ вручную.`,
          )}
        </Notice>
      ) : (
        ""
      )}
      {refundable.length > 0 ? (
        <p class="hint">
          {order.kind === "renewal" && keyBanned
            ? "Продление оплачено звёздами, а ключ заблокирован: разблокируйте ключ на его странице или верните звёзды кнопкой «Вернуть звёзды». Добавленные дни остаются у заблокированного ключа."
            : "Оплата звёздами, за которую покупатель не получил ключ, возвращается ему кнопкой «Вернуть звёзды»."}
          {order.status === "paid_no_stock"
            ? " Заказ при этом закрывается: ключ из нового поступления ему не уйдёт."
            : ""}
        </p>
      ) : (
        ""
      )}
      {payments.length === 0 ? (
        <p class="empty">Платежей нет.</p>
      ) : (
        <div class="table-wrap">
          <table class="table cards">
            <thead>
              <tr>
                <th>Транзакция</th>
                <th class="num">Сумма</th>
                <th>Способ</th>
                <th>Итог</th>
                <th>Получен</th>
              </tr>
            </thead>
            <tbody>
              {payments.map((p) => (
                <tr class={p.outcome === "duplicate" && !p.refundedAt ? "attention" : ""}>
                  <td data-label="Транзакция" class="mono" safe>
                    {p.transactionId}
                  </td>
                  <td data-label="Сумма" class="num" safe>
                    {p.currency === "XTR" ? `${wholeStars(p.amount)} ⭐` : `${p.amount} ${p.currency}`}
                  </td>
                  <td data-label="Способ">
                    <span safe>{paymentMethod(p)}</span>
                    {p.source === "test" ? <Badge tone="warn">тестовая оплата</Badge> : ""}
                    {p.source !== "test" && p.test ? <Badge tone="warn">тест AnyPay</Badge> : ""}
                  </td>
                  <td data-label="Итог">
                    <Badge tone={p.outcome === "duplicate" && !p.refundedAt ? "bad" : "ok"}>
                      {escapeHtml(outcomeLabel(p))}
                    </Badge>
                    {p.refundedAt ? (
                      <span class="sub" safe>
                        {refundedLine(p)}
                      </span>
                    ) : (
                      ""
                    )}
                    {starsRefundable(order, p, keyBanned) ? (
                      <RefundStarsForm view={view} order={order} payment={p} />
                    ) : (
                      ""
                    )}
                  </td>
                  <td data-label="Получен" safe>
                    {when(p.receivedAt)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** The order page's content: the same fragment for the whole page and for the answer to an action. */
export function OrderView(props: OrderViewProps) {
  const { view, order, buyer } = props;
  return (
    <div id="order">
      {props.notice ? (
        <Notice kind={props.notice.kind}>
          <span safe>{props.notice.text}</span>
        </Notice>
      ) : (
        ""
      )}
      <section class="card">
        <dl class="facts">
          <dt>Статус</dt>
          <dd>
            <OrderStatusBadge status={order.status} test={order.test} />
          </dd>
          {order.failure ? (
            <>
              <dt>Закрыт</dt>
              <dd safe>{order.failure}</dd>
            </>
          ) : (
            ""
          )}
          <dt>Покупатель</dt>
          <dd>
            <a href={href(view, `/users/${order.userId}`)} safe>
              {buyer ? personName(buyer) : String(order.userId)}
            </a>{" "}
            <span class="sub" safe>{`Telegram ID ${order.userId}`}</span>
            {buyer?.blockedAt ? (
              <Badge tone="muted">{escapeHtml(`заблокировал бота ${when(buyer.blockedAt)}`)}</Badge>
            ) : (
              ""
            )}
          </dd>
          <dt>Товар</dt>
          <dd>
            <ProductDuration
              view={view}
              productId={order.productId}
              productName={order.productName}
              days={order.days}
              link
            />
            {order.kind === "renewal" ? <Badge tone="info">продление</Badge> : ""}
          </dd>
          <dt>Сумма</dt>
          <dd safe>{order.stars ? `${rub(order.amountRub)} или ${stars(order.stars)}` : rub(order.amountRub)}</dd>
          {order.promoCode && order.promoCodeId !== null ? (
            <>
              <dt>Промокод</dt>
              <dd>
                <a class="mono" href={href(view, `/promos/${order.promoCodeId}`)} safe>
                  {order.promoCode}
                </a>{" "}
                <span class="sub" safe>{`скидка ${rub(order.discountRub)} от цены ${rub(order.listRub)}`}</span>
              </dd>
            </>
          ) : (
            ""
          )}
          <dt>Создан</dt>
          <dd safe>{when(order.createdAt)}</dd>
          {order.status === "pending" ? (
            <>
              <dt>Бронь до</dt>
              <dd safe>{when(order.reservedUntil)}</dd>
            </>
          ) : (
            ""
          )}
          <dt>Оплачен</dt>
          <dd safe>{when(order.paidAt)}</dd>
          {order.paidBy ? (
            <>
              <dt>Чем оплачен</dt>
              <dd safe>{`${PAID_BY_LABELS[order.paidBy]}: ${charged(order)}`}</dd>
            </>
          ) : (
            ""
          )}
          <dt>Выдан</dt>
          <dd safe>{when(order.deliveredAt)}</dd>
          {order.test ? (
            <>
              <dt>Тест</dt>
              <dd>тестовая оплата администратора — в выручку не входит</dd>
            </>
          ) : (
            ""
          )}
        </dl>
      </section>
      {order.status === "paid_no_stock" ? <CloseForm view={view} order={order} close={props.close} /> : ""}
      <div class="grid-2">
        <section class="card" id="key">
          <h2>{order.kind === "renewal" ? "Продлеваемый ключ" : "Ключ"}</h2>
          {props.orderKey ? <KeyFacts view={view} k={props.orderKey} /> : <p class="empty">Ключа у заказа нет.</p>}
        </section>
        <DeliveryCard view={view} order={order} buyer={buyer} delivery={props.delivery} />
      </div>
      <PaymentsCard
        view={view}
        order={order}
        payments={props.payments}
        keyBanned={
          order.kind === "renewal" &&
          props.orderKey?.bannedAt != null &&
          order.paidAt !== null &&
          props.orderKey.bannedAt.getTime() <= order.paidAt.getTime()
        }
      />
      <section class="card" id="events">
        <h2>Журнал покупателя по заказу</h2>
        <EventLog view={props.view} events={props.events} empty="Записей нет." linkOrders={false} />
      </section>
    </div>
  );
}

export function OrderPage(props: OrderViewProps) {
  const { view, order } = props;
  const title = `Заказ #${order.id}`;
  return (
    <Layout view={view} title={title} tab="orders">
      <p class="crumbs">
        <a href={href(view, "/orders")}>← Заказы</a>
      </p>
      <h1 safe>{title}</h1>
      <OrderView {...props} />
    </Layout>
  );
}
