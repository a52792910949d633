import type { UserEvent } from "../src/shop/users/lists.ts";
import { days, rub, when } from "./format.ts";
import { href, type View } from "./view.ts";

/**
 * A buyer's log as the owner reads it — what the person did, in words, with names: the user page shows all of it,
 * the order page the entries of one order. Names and texts come from outside (product names, what the buyer
 * typed): every one is escaped where it is rendered.
 */

const text = (value: unknown): string | null => (typeof value === "string" && value !== "" ? value : null);
const number = (value: unknown): number | null =>
  typeof value === "number" && Number.isFinite(value)
    ? value
    : typeof value === "string" && /^\d{1,15}$/.test(value)
      ? Number(value)
      : null;

/** «Rust» на 7 дней за 990 ₽ — from the event's own numbers, else its order's. */
function purchase(e: UserEvent, options: { price?: boolean } = {}): string {
  const name = e.productName ? `«${e.productName}»` : "удалённый товар";
  const d = number(e.detail.days) ?? e.order?.days ?? null;
  const price = number(e.detail.rub) ?? e.order?.rub ?? null;
  return [name, d ? `на ${days(d)}` : "", options.price !== false && price !== null ? `за ${rub(price)}` : ""]
    .filter(Boolean)
    .join(" ");
}

const orderNo = (e: UserEvent) => {
  const id = e.order?.id ?? number(e.detail.orderId);
  return id === null ? "заказ" : `заказ #${id}`;
};

/** "990.00 RUB, картой" as AnyPay reported the payment. */
function payment(e: UserEvent): string {
  const amount = text(e.detail.amount) ?? (number(e.detail.amount) !== null ? String(e.detail.amount) : null);
  const currency = text(e.detail.currency) ?? "";
  if (currency === "XTR") return amount ? `${amount.replace(/\.0+$/, "")} ⭐ (звёзды Telegram)` : "звёзды Telegram";
  const method = text(e.detail.method);
  const parts = [amount ? `${amount} ${currency}`.trim() : "", method ? `способ: ${method}` : ""];
  if (e.detail.test === true) parts.push("тестовый платёж");
  return parts.filter(Boolean).join(", ");
}

/** « с промокодом SPRING25» when the event names one. */
const withCode = (e: UserEvent) =>
  text(e.detail.promoCode) ? ` с промокодом ${clip(text(e.detail.promoCode)!, 32)}` : "";

const key = (e: UserEvent) => e.maskedKey ?? text(e.detail.key);
/** The events whose sentence names the key (withKey): the log links those to the key's page. */
const NAMES_THE_KEY = new Set(["order_fulfilled", "order_delivered", "key_gifted"]);
const withKey = (e: UserEvent) => (key(e) ? ` ${key(e)}` : "");
const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max)}…` : s);

/** The sentence for one event, starting with a capital letter. */
export function eventSentence(e: UserEvent): string {
  const sentence = describe(e);
  return sentence.charAt(0).toUpperCase() + sentence.slice(1);
}

function describe(e: UserEvent): string {
  switch (e.kind) {
    case "start":
    case "started":
      return "Запустил бота";
    case "message": {
      const typed = text(e.detail.text);
      if (typed === null) return "Отправил сообщение без текста (файл, стикер…)";
      if (/^\/start(\s|$)/.test(typed)) return "Запустил бота";
      if (typed.startsWith("/")) return `Отправил команду ${clip(typed.split(/\s/)[0]!, 40)}`;
      return `Написал боту: «${clip(typed, 200)}»`;
    }
    case "catalogue":
      return "Открыл каталог";
    case "purchases":
      return number(e.detail.page) !== null && number(e.detail.page)! > 1
        ? `Открыл «Мои покупки», страница ${number(e.detail.page)}`
        : "Открыл «Мои покупки»";
    case "hwid_reset_asked":
      return `Нажал «Сбросить привязку» у ключа${withKey(e)}`;
    case "hwid_reset_confirmed":
      return `Подтвердил сброс привязки ключа${withKey(e)}`;
    case "hwid_reset":
      return `Сбросил привязку ключа${withKey(e)} к ПК${text(e.detail.uuid) ? ` ${clip(text(e.detail.uuid)!, 128)}` : ""}`;
    case "product_viewed":
      return `Открыл товар ${e.productName ? `«${e.productName}»` : "(товар удалён)"}`;
    case "duration_chosen":
      return `Выбрал ${purchase(e)}`;
    case "purchase_confirmed":
      return `Подтвердил покупку: ${purchase(e)}${withCode(e)}`;
    case "promo_entry":
      return `Нажал «Ввести промокод»: ${purchase(e)}`;
    case "order_placed":
      return e.detail.renewal === true
        ? `Оформил ${orderNo(e)}: продление ключа${withKey(e)} — ${purchase(e)}${withCode(e)}`
        : `Оформил ${orderNo(e)}: ${purchase(e)}${withCode(e)}`;
    case "renewal_opened":
      return `Нажал «Продлить» у ключа${withKey(e)}`;
    case "renewal_duration_chosen":
      return `Выбрал продление ключа${withKey(e)}: ${purchase(e)}`;
    case "renewal_confirmed":
      return `Подтвердил продление ключа${withKey(e)}: ${purchase(e)}${withCode(e)}`;
    case "order_replaced":
      return `${orderNo(e)} заменён новым: цена изменилась${number(e.detail.newRub) !== null ? ` на ${rub(number(e.detail.newRub)!)}` : ""}`;
    case "test_payment":
      return `Нажал «тестовая оплата» (${orderNo(e)}: ${purchase(e)})`;
    case "order_paid":
      return e.detail.renewal === true
        ? `Оплатил ${orderNo(e)}: продление ключа${withKey(e)} — ${purchase(e, { price: false })} — ${payment(e)}` +
            (e.detail.keyBanned === true ? " (ключ заблокирован: дни добавлены, решение за администратором)" : "")
        : `Оплатил ${orderNo(e)}: ${purchase(e, { price: false })} — ${payment(e)}`;
    case "order_paid_no_stock":
      return `Оплатил ${orderNo(e)} (${purchase(e, { price: false })}), но свободных ключей не осталось — ${payment(e)}`;
    case "payment_duplicate":
      return `Оплатил уже оплаченный ${orderNo(e)} ещё раз — ${payment(e)}`;
    case "stars_invoice":
      return `Запросил счёт в звёздах (${orderNo(e)})`;
    case "stars_refunded":
      return `Получил звёзды обратно за ${orderNo(e)}: ${(text(e.detail.amount) ?? "?").replace(/\.0+$/, "")} ⭐${text(e.detail.by) ? `, вернул ${clip(text(e.detail.by)!, 100)}` : ""}`;
    case "order_fulfilled":
      return `Получил ключ${withKey(e)} из нового поступления (${orderNo(e)}: ${purchase(e, { price: false })})`;
    case "order_delivered":
      if (e.detail.renewal === true) return `Получил сообщение о продлении ключа${withKey(e)} (${orderNo(e)})`;
      return `Получил ${e.detail.document === true ? "архив и ключ" : "ключ"}${withKey(e)} (${orderNo(e)}: ${purchase(e, { price: false })})`;
    case "order_expired":
      return e.detail.renewal === true
        ? `Не оплатил ${orderNo(e)} (продление ключа${withKey(e)}) вовремя: заказ истёк`
        : `Не оплатил ${orderNo(e)} вовремя: заказ истёк, ключ вернулся в продажу`;
    case "order_closed":
      return `${orderNo(e)} закрыт администратором${text(e.detail.note) ? `: «${clip(text(e.detail.note)!, 200)}»` : ""}`;
    case "delivery_blocked":
      return `Не получил товар (${orderNo(e)}): бот заблокирован`;
    case "delivery_failed":
      return `Не получил товар (${orderNo(e)}): Telegram не принял сообщение${text(e.detail.error) ? ` — ${clip(text(e.detail.error)!, 120)}` : ""}`;
    case "key_gifted":
      return `Получил ключ${withKey(e)} без оплаты: ${purchase(e, { price: false })}`;
    case "blocked":
      return "Заблокировал бота";
    case "broadcast_opened":
      return "Открыл рассылку (администратор)";
    case "broadcast_confirmed":
      return "Отправил рассылку (администратор)";
    case "broadcast_dropped":
      return "Отменил рассылку (администратор)";
    case "maintenance_switched":
      return e.detail.on === true
        ? "Начал технические работы (администратор)"
        : "Закончил технические работы (администратор)";
    case "sharing_alert_pressed": {
      const what =
        e.detail.action === "ban" ? "«Забанить»" : e.detail.action === "reset" ? "«Сбросить HWID»" : "«Оставить»";
      return `Нажал ${what} в оповещении о передаче ключа (администратор)`;
    }
    case "button":
      return "Нажал кнопку старого сообщения";
    default:
      return `Событие «${clip(e.kind, 64)}»`;
  }
}

/** The log; each entry links to its order unless `linkOrders` is false (the order's own page). */
export function EventLog(props: { view: View; events: UserEvent[]; empty: string; linkOrders?: boolean }) {
  const { view, events, empty } = props;
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
            {eventSentence(e)}
          </span>
          {e.keyId !== null && NAMES_THE_KEY.has(e.kind) ? (
            <a class="sub" href={href(view, `/keys/${e.keyId}`)}>
              ключ
            </a>
          ) : (
            ""
          )}
          {e.order && props.linkOrders !== false ? (
            <a class="sub" href={href(view, `/orders/${e.order.id}`)} safe>{`заказ #${e.order.id}`}</a>
          ) : (
            ""
          )}
        </li>
      ))}
    </ol>
  );
}
