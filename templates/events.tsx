import type { UserEvent } from "../src/shop/listings.ts";
import { when } from "./format.ts";

/** A buyer's log as the owner reads it: the user page shows all of it, the order page the entries of one order. */

const EVENT_LABELS: Record<string, string> = {
  start: "Запустил бота",
  started: "Запустил бота",
  catalogue: "Открыл каталог",
  product_viewed: "Открыл товар",
  duration_chosen: "Выбрал длительность",
  order_placed: "Оформил заказ",
  order_paid: "Оплатил заказ",
  order_paid_no_stock: "Оплатил заказ, но ключей не осталось",
  payment_duplicate: "Оплатил уже оплаченный заказ ещё раз",
  order_fulfilled: "Получил ключ из нового поступления",
  order_delivered: "Получил товар",
  order_expired: "Заказ истёк",
  order_closed: "Заказ закрыт администратором",
  delivery_blocked: "Не получил товар: бот заблокирован",
  delivery_failed: "Не получил товар: Telegram не принял сообщение",
  key_gifted: "Получил ключ без оплаты",
  blocked: "Заблокировал бота",
};

const DETAIL_LABELS: Record<string, string> = {
  orderId: "заказ",
  productId: "товар",
  product: "товар",
  days: "дней",
  rub: "₽",
  keyId: "ключ",
  key: "ключ",
  amount: "сумма",
  currency: "валюта",
  transactionId: "транзакция",
  method: "способ",
  test: "тест",
  note: "заметка",
  error: "ошибка",
  attempts: "попыток",
  document: "с файлом",
  orderStatus: "статус заказа",
  reservationLapsed: "бронь истекла",
};

/** An event's details as short "name: value" text (values are whatever the bot recorded; shown escaped). */
function detailText(detail: Record<string, unknown>): string {
  return Object.entries(detail)
    .filter(([, v]) => v !== null && v !== undefined && typeof v !== "object")
    .map(([k, v]) => `${DETAIL_LABELS[k] ?? k}: ${typeof v === "boolean" ? (v ? "да" : "нет") : String(v)}`)
    .join(", ")
    .slice(0, 300);
}

export function EventLog({ events, empty }: { events: UserEvent[]; empty: string }) {
  if (events.length === 0) {
    return (
      <p class="empty" safe>
        {empty}
      </p>
    );
  }
  return (
    <ol class="log">
      {events.map((e) => (
        <li>
          <time datetime={e.at.toISOString()} safe>
            {when(e.at)}
          </time>
          <span class="event" safe>
            {EVENT_LABELS[e.kind] ?? e.kind}
          </span>
          <span class="sub" safe>
            {detailText(e.detail)}
          </span>
        </li>
      ))}
    </ol>
  );
}
