import { daysLabel } from "../../lib/durations.ts";
import { type Discount, discountLabel } from "../promos/discount.ts";
import { daysList, type PromoVerdict } from "../promos/promos.ts";
import type { KeyPurchase, Purchase, PurchaseState } from "../users/purchases.ts";

/**
 * Everything a buyer reads in Telegram, in one place: the bot's screens and buttons, its notices, the purchase
 * itself. What admins read is in admins.ts. The texts marked *exact* are the customer's own words
 * (docs/panel.md#the-bot-for-buyers): tests compare them character by character; the rest are ours.
 */

/** Exact: to everyone but admins while the bot is switched off. */
export const BOT_OFF = "Бот временно отключён.";
/** Exact: to everyone but admins during maintenance. */
export const MAINTENANCE = "Ведутся технические работы. Попробуйте позже.";
/** Exact: the product card's question. */
export const CHOOSE_DURATION = "Выберите длительность подписки:";
/** Exact: the confirmation button. */
export const CONFIRM = "Подтвердить";

/** Exact: a duration button, e.g. «1 день • 299₽», «7 дней • 899₽». */
export const offerButton = (days: number, rub: number) => `${daysLabel(days)} • ${rub}₽`;

/** Exact: the confirmation step, edited into the product card's message. */
export const confirmText = (product: string, days: number, rub: number) =>
  [
    "Подтвердите покупку:",
    `${product} ${daysLabel(days)} • ${rub}₽.`,
    "После подтверждения вам предоставится страница для оплаты подписки, после успешной оплаты вы получите товар.",
  ].join("\n");

/** A promo code applied on the confirmation: the code, its discount and the price without it. */
export type AppliedCode = { code: string; discount: Discount; listRub: number };

/**
 * The confirmation with a promo code applied: the exact first line, the price after the code with the old one named
 * beside it, and — when the code covers everything — no payment page to promise.
 */
export const confirmWithCodeText = (product: string, days: number, rub: number, applied: AppliedCode) =>
  [
    "Подтвердите покупку:",
    `${product} ${daysLabel(days)} • ${rub}₽ вместо ${applied.listRub}₽ (промокод ${applied.code}, ${discountLabel(applied.discount)}).`,
    rub === 0
      ? "Промокод покрывает всю стоимость: после подтверждения вы сразу получите товар."
      : "После подтверждения вам предоставится страница для оплаты подписки, после успешной оплаты вы получите товар.",
  ].join("\n");

/** The confirmation's button that asks for a promo code, before and after one is applied. */
export const PROMO_BUTTON = "🎟 Ввести промокод";
export const OTHER_PROMO_BUTTON = "🎟 Другой промокод";
export const CANCEL = "« Отмена";

/** After «Ввести промокод»: what to send, and the way back. */
export const PROMO_PROMPT =
  "Отправьте промокод одним сообщением — латинские буквы и цифры, регистр не важен.\n" +
  "Передумали — нажмите «Отмена», цена останется прежней.";
export const PROMO_TEXT_ONLY = "Промокод нужно отправить текстом. Отправьте его ещё раз или нажмите «Отмена».";

const minutes = (seconds: number) => Math.max(1, Math.ceil(seconds / 60));

/**
 * Why a code was not taken, and what the buyer can do: each is shown above the confirmation at the full price, so
 * the purchase can go on without the code.
 */
export function promoRefusedText(
  verdict: Extract<PromoVerdict, { ok: false }>,
  what: "purchase" | "renewal" = "purchase",
): string {
  const code = verdict.code;
  const onDays = verdict.days ? ` на ${daysList(verdict.days)}` : "";
  // The confirmation under the text is a purchase's or a renewal's: the buyer is told to confirm that one.
  const it = what === "renewal" ? "продление" : "покупку";
  switch (verdict.reason) {
    case "unknown":
      return `Промокода «${code}» нет. Проверьте, как он написан, и нажмите «${PROMO_BUTTON}» ещё раз — или подтвердите ${it} без него.`;
    case "disabled":
      return `Промокод ${code} больше не действует. Подтвердите ${it} по обычной цене или введите другой промокод.`;
    case "expired":
      return `Срок действия промокода ${code} закончился. Подтвердите ${it} по обычной цене или введите другой промокод.`;
    case "other_product":
      return what === "renewal"
        ? `Промокод ${code} действует только для «${verdict.productName}»${onDays}. Подтвердите продление без промокода или введите другой.`
        : `Промокод ${code} действует только для «${verdict.productName}»${onDays}. Выберите этот товар в каталоге или подтвердите покупку без промокода.`;
    case "other_duration":
      return `Промокод ${code} действует только для ${verdict.productName ? `«${verdict.productName}»` : what === "renewal" ? "продлений" : "покупок"}${onDays}. Вернитесь назад и выберите этот срок — или подтвердите ${it} без промокода.`;
    case "used_up":
      return `Промокод ${code} уже израсходован. Подтвердите ${it} по обычной цене или введите другой промокод.`;
    case "used_by_you":
      return `Вы уже воспользовались промокодом ${code} столько раз, сколько он позволяет. Подтвердите ${it} по обычной цене или введите другой промокод.`;
  }
}

/** Too many unknown codes in a row. */
export const promoGuessingText = (retryAfterS: number, what: "purchase" | "renewal" = "purchase") =>
  `Слишком много неверных промокодов. Попробуйте снова через ${minutes(retryAfterS)} мин. — или подтвердите ${what === "renewal" ? "продление" : "покупку"} без промокода.`;

/** A code covered the whole price: the order is paid, the key is on its way. */
export const paidByPromoText = (order: { id: number; promoCode: string | null }) =>
  `Промокод ${order.promoCode ?? ""} покрыл всю стоимость заказа №${order.id}. Ключ придёт в этот чат через несколько секунд.`;

/**
 * Exact: the purchase message: the caption of the product's zip, or the whole message when the product has no
 * build.
 */
export function deliveryText(key: string, productName: string, days: number): string {
  return `Ключ: ${key}\nТовар: ${productName} ${daysLabel(days)}\nСпасибо за покупку!`;
}

/** The product card: its description (if any), then the question. */
export const productCardText = (description: string) =>
  description.trim() ? `${description.trim()}\n\n${CHOOSE_DURATION}` : CHOOSE_DURATION;

export const CATALOGUE_TITLE = "Выберите товар:";
export const CATALOGUE_EMPTY = "Сейчас товаров в наличии нет. Загляните позже.";
export const BACK = "« Назад";
export const TO_CATALOGUE = "« В каталог";
export const MY_PURCHASES = "Мои покупки";
export const payButton = (rub: number) => `Оплатить ${rub}₽`;
/** The button that asks for an invoice in Telegram Stars (it must contain ⭐). */
export const payStarsButton = (stars: number) => `Оплатить ${stars} ⭐`;

/** The commands Telegram shows in the bot's menu. */
export const BOT_COMMANDS = [
  { command: "start", description: "Каталог" },
  { command: "purchases", description: MY_PURCHASES },
];

// Stale buttons: a short notice (answerCallbackQuery), then the fresh card.
export const STALE_PRODUCT = "Этот товар сейчас недоступен.";
export const STALE_DURATION = (days: number) => `Ключей на ${daysLabel(days)} сейчас нет.`;
export const PRICE_CHANGED = (rub: number) => `Цена изменилась: теперь ${rub}₽.`;
export const STALE_BUTTON = "Эта кнопка устарела.";
export const SOMETHING_WENT_WRONG = "Что-то пошло не так. Попробуйте ещё раз.";
export const TOO_MANY_REQUESTS = "Слишком много запросов. Подождите минуту.";

const MSK = new Intl.DateTimeFormat("ru-RU", {
  timeZone: "Europe/Moscow",
  day: "2-digit",
  month: "2-digit",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});
const MSK_TIME = new Intl.DateTimeFormat("ru-RU", { timeZone: "Europe/Moscow", hour: "2-digit", minute: "2-digit" });

/** «05.06.2025, 14:30 МСК»: buyers are in Russia, and the server's own time zone means nothing to them. */
export const moscowDateTime = (date: Date) => `${MSK.format(date)} МСК`;

/**
 * An order's price on its payment step: «1999₽ или 150 ⭐.», and with a code «1599₽ вместо 1999₽ (промокод X) или
 * 120 ⭐.» — the list price next to the rouble price it was cut from, not after the Stars.
 */
function priceLine(order: { amountRub: number; listRub: number; promoCode: string | null }, stars: number | null) {
  const rub = order.promoCode
    ? `${order.amountRub}₽ вместо ${order.listRub}₽ (промокод ${order.promoCode})`
    : `${order.amountRub}₽`;
  return `${rub}${stars !== null ? ` или ${stars} ⭐` : ""}.`;
}

/**
 * The payment step. `stars`: the order can also be paid in Telegram Stars, this many; `page`: a payment page
 * (AnyPay) is offered too — without one, only the invoice in Stars is.
 */
export const paymentText = (
  order: {
    id: number;
    productName: string;
    days: number;
    amountRub: number;
    listRub: number;
    promoCode: string | null;
    reservedUntil: Date;
  },
  stars: number | null = null,
  page = true,
) =>
  [
    `Заказ №${order.id}: ${order.productName} ${daysLabel(order.days)} • ${priceLine(order, stars)}`,
    `Ключ забронирован за вами до ${MSK_TIME.format(order.reservedUntil)} МСК.`,
    stars === null
      ? "Нажмите «Оплатить», чтобы перейти на страницу оплаты. После оплаты ключ придёт в этот чат."
      : page
        ? "Нажмите «Оплатить», чтобы перейти на страницу оплаты, или «Оплатить ⭐», чтобы получить счёт в звёздах Telegram прямо в чате. После оплаты ключ придёт в этот чат."
        : "Нажмите «Оплатить ⭐», чтобы получить счёт в звёздах Telegram прямо в чате. После оплаты ключ придёт в этот чат.",
  ].join("\n");

/**
 * The invoice in Telegram Stars (sendInvoice): Telegram allows a title of 32 characters and a description of 255;
 * the payload is the order id, read back by the payment's checks.
 */
export function starsInvoiceText(order: {
  id: number;
  productName: string;
  days: number;
  kind?: "purchase" | "renewal";
}): {
  title: string;
  description: string;
  label: string;
} {
  const name = `${order.kind === "renewal" ? "Продление: " : ""}${order.productName} ${daysLabel(order.days)}`;
  return {
    title: name.length > 32 ? `${name.slice(0, 31)}…` : name,
    description: (order.kind === "renewal"
      ? `Заказ №${order.id}: продление ключа на ${daysLabel(order.days)} (${order.productName}). После оплаты сюда придёт сообщение о продлении.`
      : `Заказ №${order.id}: ключ ${what(order)}. После оплаты ключ придёт в этот чат.`
    ).slice(0, 255),
    label: `Заказ №${order.id}`,
  };
}

/**
 * Why an invoice in Stars is not sent, or a payment of one is refused before the money is taken
 * (pre_checkout_query, at most 255 characters): each says what to do next.
 */
export const starsRefusal = {
  noOrder: "Этот заказ не найден. Откройте каталог (/start) и оформите покупку заново.",
  notYours: "Этот счёт выставлен другому покупателю. Оформите свою покупку в каталоге (/start).",
  alreadyPaid: "Этот заказ уже оплачен — ключ в «Моих покупках» (/purchases). Второй раз платить не нужно.",
  expired:
    "Бронь этого заказа истекла, и оплатить его уже нельзя. Оформите покупку заново в каталоге (/start) — звёзды не списаны.",
  wrongAmount: "Сумма счёта не совпадает с заказом. Оформите покупку заново в каталоге (/start) — звёзды не списаны.",
  off: "Оплата звёздами сейчас выключена. Оплатите заказ кнопкой «Оплатить» или попробуйте позже — звёзды не списаны.",
  keyBanned:
    "Этот ключ заблокирован, и продлить его нельзя — звёзды не списаны. Если это ошибка, напишите администратору.",
} as const;

/**
 * The refusals that differ for a renewal: it held no reservation and was started from «Мои покупки», not the
 * catalogue, so the next step is «Продлить» there again (the rest read the same for either kind).
 */
export const renewalStarsRefusal: Partial<Record<keyof typeof starsRefusal, string>> = {
  notYours:
    "Этот счёт выставлен другому покупателю. Продлить можно свой ключ: «Мои покупки» (/purchases) → «Продлить».",
  alreadyPaid:
    "Это продление уже оплачено — новый срок ключа в «Моих покупках» (/purchases). Второй раз платить не нужно.",
  expired:
    "Время на оплату этого продления истекло. Откройте «Мои покупки» (/purchases) и нажмите «Продлить» ещё раз — звёзды не списаны.",
  wrongAmount:
    "Сумма счёта не совпадает с заказом. Откройте «Мои покупки» (/purchases) и нажмите «Продлить» ещё раз — звёзды не списаны.",
};

/** pre_checkout_query could not be checked (the shop is in trouble): refused, nothing taken. */
export const STARS_CHECK_FAILED =
  "Не удалось проверить заказ. Попробуйте оплатить ещё раз через минуту — звёзды не списаны.";

/** A Stars payment for an order that had already been paid: the admins are told, and give it back. */
export const starsDuplicateText = (orderId: number) =>
  `Заказ №${orderId} уже был оплачен раньше, поэтому эта оплата лишняя. Администратор уже знает и вернёт звёзды.`;

/** A Stars payment that fits no order of this buyer (it cannot happen through our invoices): given back at once. */
export const STARS_PAYMENT_RETURNED =
  "Этот платёж не подошёл ни к одному вашему заказу, поэтому звёзды возвращены. Оформите покупку в каталоге (/start).";

/** Telegram would not give the stray payment back: the admins are told and do it by hand. */
export const STARS_PAYMENT_HELD =
  "Этот платёж не подошёл ни к одному вашему заказу. Администратор уже знает и вернёт звёзды.";

/** The buyer got their Stars back from the panel. */
export const starsRefundedText = (order: { id: number; productName: string; days: number }, stars: string) =>
  `Звёзды за заказ №${order.id} (${what(order)}) возвращены: ${stars} ⭐.`;

export const PAYMENTS_NOT_CONFIGURED =
  "Оплата пока не настроена. Мы уже сообщили администратору — попробуйте немного позже.";

const what = (order: { productName: string; days: number }) => `«${order.productName} ${daysLabel(order.days)}»`;

/** To the buyer whose payment arrived after the last key was gone. */
export function paidNoStockText(order: { id: number; productName: string; days: number }): string {
  return (
    `Оплата заказа №${order.id} получена, но ${what(order)} только что закончился. ` +
    "Администратор уже знает: ключ придёт сюда, как только появится, или с вами свяжутся."
  );
}

const STATE_TEXT: Record<PurchaseState, (p: KeyPurchase) => string> = {
  not_activated: (p) =>
    p.renewedDays > 0
      ? `не активирован (срок ${daysLabel(p.days + p.renewedDays)} с первой активации)`
      : "не активирован",
  active: (p) => `действует до ${moscowDateTime(p.expiresAt!)}`,
  expired: (p) => `истёк ${moscowDateTime(p.expiresAt!)}`,
  banned: () => "заблокирован",
};

export const NO_PURCHASES = "У вас пока нет покупок.";
export const WAITING_FOR_KEY = "оплачен, ключ будет выдан, как только появится";
export const CLOSED_WITHOUT_KEY = "закрыт без ключа — по вопросам оплаты напишите администратору";

/** Telegram refuses a message longer than this (counted after entities; we send plain text). */
export const MESSAGE_LIMIT = 4096;

/**
 * Entries on one page of «Мои покупки». An entry is at most ~300 characters (a 64-character name, a 128-character
 * imported key, the state), so a page stays far below MESSAGE_LIMIT, and its keyboard (two buttons per key and the
 * page buttons) far below Telegram's 100 buttons.
 */
export const PURCHASES_PER_PAGE = 5;

function purchaseEntry(n: number, item: { purchase: Purchase; state: PurchaseState | null }): string {
  const p = item.purchase;
  const title = `${n}. ${p.productName} ${daysLabel(p.days)}`;
  if (p.kind === "key") return [title, `Ключ: ${p.key}`, `Статус: ${STATE_TEXT[item.state!](p)}`].join("\n");
  return [
    title,
    `Заказ №${p.orderId}, оплачен ${moscowDateTime(p.paidAt)}`,
    `Статус: ${p.kind === "waiting" ? WAITING_FOR_KEY : CLOSED_WITHOUT_KEY}`,
  ].join("\n");
}

/**
 * One page of «Мои покупки», newest first: entries numbered across pages (`first` is the number of the page's
 * first one), and the page line when there is more than one page. `state` is the key's state, null for an order
 * without a key.
 */
export const purchasesText = (
  items: { purchase: Purchase; state: PurchaseState | null }[],
  page: { first: number; page: number; pages: number },
) => {
  const entries = items.map((item, i) => purchaseEntry(page.first + i, item));
  const lines = ["Мои покупки:", ...entries];
  if (page.pages > 1) lines.push(`Страница ${page.page} из ${page.pages}.`);
  return lines.join("\n\n");
};

/** Under a key in «Мои покупки» (the number is the entry's). */
export const renewButton = (n: number) => `🔄 Продлить №${n}`;
export const resetButton = (n: number) => `💻 Сбросить привязку №${n}`;
export const PREVIOUS_PAGE = "‹ Новее";
export const NEXT_PAGE = "Старше ›";
export const TO_PURCHASES = "« К покупкам";

const keyLine = (key: { key: string; productName: string; days: number }) =>
  `Ключ: ${key.key}\nТовар: ${key.productName} ${daysLabel(key.days)}`;

/** «Сбросить привязку»: what it does, before it is done. */
export const resetConfirmText = (
  key: { key: string; productName: string; days: number; expiresAt: Date | null },
  cooldownDays: number,
) =>
  [
    "Сбросить привязку ключа к компьютеру?",
    keyLine(key),
    "После сброса ключ привяжется к первому компьютеру, на котором запустят программу. " +
      (key.expiresAt
        ? `Срок действия не изменится: до ${moscowDateTime(key.expiresAt)}.`
        : "Срок действия не изменится."),
    `Сбрасывать привязку можно не чаще раза в ${daysLabel(cooldownDays)}.`,
  ].join("\n\n");
export const RESET_CONFIRM = "Сбросить привязку";

export const resetDoneText = (key: { key: string; expiresAt: Date | null }, nextAt: Date) =>
  [
    "Привязка сброшена.",
    `Ключ: ${key.key}`,
    "Запустите программу на новом компьютере — ключ привяжется к нему." +
      (key.expiresAt ? ` Срок действия прежний: до ${moscowDateTime(key.expiresAt)}.` : ""),
    `Следующий сброс — не раньше ${moscowDateTime(nextAt)}.`,
  ].join("\n\n");

/** A refused reset (a notice over the list: at most 200 characters). */
export const resetCooldownText = (nextAt: Date, cooldownDays: number) =>
  `Привязку можно сбрасывать раз в ${daysLabel(cooldownDays)}. Следующий сброс возможен с ${moscowDateTime(nextAt)}.`;
export const RESET_OFF = "Сброс привязки сейчас недоступен. Если сменили компьютер, напишите администратору.";
export const RESET_NOT_BOUND =
  "Ключ сейчас не привязан ни к одному компьютеру: он привяжется к первому, на котором запустят программу.";
/** A banned key's buttons (an alert, at most 200 characters): what it rules out, and where to go if it is a mistake. */
export const KEY_BANNED =
  "Этот ключ заблокирован: продлить его или сбросить привязку нельзя. Если это ошибка, напишите администратору.";
export const KEY_NOT_ACTIVATED =
  "Ключ ещё не активирован: он привяжется к первому компьютеру, на котором его запустят.";

// Renewal of a key the buyer owns: «Продлить» in «Мои покупки».

/** Above the durations a key can be renewed for. */
export const renewChooseText = (key: { key: string; productName: string; days: number }) =>
  ["Продление ключа", keyLine(key), "Выберите, на сколько продлить:"].join("\n\n");

/** What paying the renewal will do to the key, in its present state. */
function renewalEffect(key: { expiresAt: Date | null }, days: number, now: Date): string {
  if (!key.expiresAt)
    return `Ключ ещё не активирован: после активации он будет действовать на ${daysLabel(days)} дольше.`;
  if (key.expiresAt.getTime() > now.getTime()) {
    return `Срок действия продлится на ${daysLabel(days)}: сейчас до ${moscowDateTime(key.expiresAt)}.`;
  }
  return `Ключ истёк: после оплаты он будет действовать ${daysLabel(days)} с момента оплаты, привязка к компьютеру сохранится.`;
}

/** The renewal's confirmation: the key, the duration and price, what paying will do. */
export const renewConfirmText = (
  key: { key: string; productName: string; days: number; expiresAt: Date | null },
  days: number,
  rub: number,
  applied?: AppliedCode,
  now = new Date(),
) =>
  [
    "Подтвердите продление:",
    `Ключ: ${key.key}`,
    `${key.productName} ${daysLabel(days)} • ${rub}₽` +
      (applied ? ` вместо ${applied.listRub}₽ (промокод ${applied.code}, ${discountLabel(applied.discount)}).` : "."),
    renewalEffect(key, days, now),
    rub === 0
      ? "Промокод покрывает всю стоимость: ключ продлится сразу после подтверждения."
      : "После подтверждения вам предоставится страница для оплаты, после успешной оплаты ключ продлится.",
  ].join("\n");

/**
 * The payment screen of a renewal order. `stars`: it can also be paid in Telegram Stars, this many; `page`: a payment
 * page (AnyPay) is offered too — without one, only the invoice in Stars is.
 */
export const renewalPaymentText = (
  order: {
    id: number;
    productName: string;
    days: number;
    amountRub: number;
    listRub: number;
    promoCode: string | null;
    reservedUntil: Date;
  },
  key: string,
  stars: number | null = null,
  page = true,
) =>
  [
    `Заказ №${order.id}: продление ключа ${key}`,
    `${order.productName} ${daysLabel(order.days)} • ${priceLine(order, stars)}`,
    `Оплатите до ${MSK_TIME.format(order.reservedUntil)} МСК.`,
    stars === null
      ? "Нажмите «Оплатить», чтобы перейти на страницу оплаты. После оплаты сюда придёт сообщение о продлении."
      : page
        ? "Нажмите «Оплатить», чтобы перейти на страницу оплаты, или «Оплатить ⭐», чтобы получить счёт в звёздах Telegram прямо в чате. После оплаты сюда придёт сообщение о продлении."
        : "Нажмите «Оплатить ⭐», чтобы получить счёт в звёздах Telegram прямо в чате. После оплаты сюда придёт сообщение о продлении.",
  ].join("\n");

/** A renewal a promo code paid in full. */
export const renewalPaidByPromoText = (order: { id: number; promoCode: string | null }) =>
  `Промокод ${order.promoCode ?? ""} покрыл всю стоимость заказа №${order.id}. Сообщение о продлении придёт в этот чат через несколько секунд.`;

/** The message after a renewal was paid: the key, the product and the new expiry (МСК). */
export function renewedText(
  key: string,
  productName: string,
  days: number,
  now: { expiresAt: Date | null; totalDays: number; banned: boolean },
): string {
  const lines = [`Ключ продлён на ${daysLabel(days)}.`, `Ключ: ${key}`, `Товар: ${productName}`];
  lines.push(
    now.expiresAt
      ? `Действует до: ${moscowDateTime(now.expiresAt)}`
      : `Срок: ${daysLabel(now.totalDays)} с первой активации`,
  );
  if (now.banned) {
    lines.push(
      "",
      "Ключ заблокирован администратором, поэтому пока не работает. Администратор уже знает об оплате: " +
        "он разблокирует ключ (оплаченные дни сохранятся) или вернёт деньги.",
    );
  }
  return lines.join("\n");
}

export const RENEW_UNAVAILABLE =
  "Продление этого товара недоступно: его сейчас не продают. Если ключ нужен дольше, напишите администратору.";
export const RENEW_DURATION_GONE = (days: number) => `Продление на ${daysLabel(days)} сейчас недоступно.`;
