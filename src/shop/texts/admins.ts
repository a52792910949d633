import { daysLabel } from "../../lib/durations.ts";
import { counted, plural, USERS } from "../../lib/plural.ts";
import { BOT_OFF, MAINTENANCE } from "./buyers.ts";

/**
 * Everything the shop's admins read in Telegram: what the bot shows them beside the storefront (the mode, the
 * broadcast, maintenance, test payments), and the alerts about money or keys that need a person
 * (docs/panel.md#when-a-person-is-needed). What buyers read is in buyers.ts.
 */

export type BotMode = "off" | "maintenance" | "on";

/** The line an admin sees above the catalogue: which mode buyers are in right now. */
export const adminModeLine = (mode: BotMode) =>
  mode === "off"
    ? `🔧 Вы администратор. Бот отключён: покупатели видят «${BOT_OFF}»`
    : mode === "maintenance"
      ? `🔧 Вы администратор. Включены техработы: покупатели видят «${MAINTENANCE}»`
      : "🔧 Вы администратор. Бот работает для всех.";

export const ADMIN_ONLY = "Это действие доступно только администраторам.";

// Maintenance.
export const maintenanceButton = (on: boolean) => (on ? "🛠 Выключить техработы" : "🛠 Включить техработы");
export const maintenanceToggled = (on: boolean) => (on ? "Техработы включены." : "Техработы выключены.");

// A broadcast from the bot: «Рассылка» → the text → a preview → «Отправить» or «Отмена».
export const BROADCAST_BUTTON = "📣 Рассылка";
export const BROADCAST_PROMPT =
  "Отправьте текст рассылки одним сообщением (до 4096 символов).\nЕё получат все пользователи бота, кроме заблокировавших его. /cancel — отмена.";
export const BROADCAST_TEXT_ONLY = "Нужен текст: рассылка отправляет только текстовые сообщения.";
/** «увидят 5 пользователей»: how many a broadcast reaches, as the bot's preview and the panel's both say it. */
export const wouldSee = (audience: number) =>
  `${plural(audience, ["увидит", "увидят", "увидят"])} ${counted(audience, USERS)}`;
export const broadcastPreviewHeader = (audience: number) =>
  `Предпросмотр рассылки. Так сообщение ${wouldSee(audience)}:`;
export const BROADCAST_SEND = "✅ Отправить";
export const BROADCAST_CANCEL = "✖️ Отмена";
export const broadcastStarted = (id: number, recipients: number) =>
  `Рассылка №${id} запущена: ${counted(recipients, ["получатель", "получателя", "получателей"])}. Прогресс — в панели, вкладка «Основные настройки».`;
export const BROADCAST_CANCELLED = "Рассылка отменена.";
export const BROADCAST_DRAFT_GONE = "Этот черновик рассылки устарел. Начните заново.";

// Test payments: an admin pays their own order without money («Тестовые платежи для администраторов»).
export const TEST_PAY = "Оплатить (тест)";
export const TEST_ONLY_PAYMENT = "AnyPay ещё не настроен — доступна только тестовая оплата.";
export const testPaidText = (orderId: number) => `Заказ №${orderId} оплачен (тест). Ключ придёт в этот чат.`;
export const TEST_PAY_ACCEPTED = "Тестовая оплата принята.";
export const TEST_PAY_OFF = "Тестовые платежи выключены в панели.";
/** Why a test payment was not made, as the admin's pressed button answers it. */
export const testPaymentNotMade = {
  off: TEST_PAY_OFF,
  notAdmin: "Тестовая оплата доступна только администраторам.",
  noOrder: "Заказ не найден.",
  noStock: "Оплата записана, но ключей не осталось: заказ ждёт пополнения.",
  alreadyPaid: "Заказ уже был оплачен.",
};

// Alerts: best effort, the same facts are in the panel and the log.
const who = (userId: number, username: string | null) => (username ? `${userId} (@${username})` : String(userId));
const what = (order: { productName: string; days: number }) => `«${order.productName} ${daysLabel(order.days)}»`;

type OrderFacts = { id: number; userId: number; productName: string; days: number };

export const alertTexts = {
  /** A buyer pressed «Подтвердить» but no way to pay is set up. */
  paymentsNotConfigured:
    "⚠️ Покупатель не смог оплатить: в панели не заданы ID магазина и секретный ключ AnyPay (вкладка «Основные настройки»).",

  paidNoStock: (
    order: OrderFacts,
    username: string | null,
    payment: { amount: string; currency: string; transactionId: string },
  ) =>
    [
      `⚠️ Заказ №${order.id} оплачен, но ключей ${what(order)} не осталось.`,
      `Покупатель: ${who(order.userId, username)}`,
      `Сумма: ${payment.amount} ${payment.currency === "XTR" ? "⭐" : "₽"}, транзакция ${payment.transactionId}`,
      "Добавьте ключи этого товара и длительности — покупатель получит ключ автоматически. " +
        (payment.currency === "XTR"
          ? "Или верните звёзды кнопкой «Вернуть звёзды» на странице заказа в панели."
          : "Если вы вернули деньги, закройте заказ в панели."),
    ].join("\n"),

  /** A renewal paid after its key was banned: the days are added behind the ban; the owner decides. */
  renewalOfBannedKey: (
    order: OrderFacts,
    key: string,
    username: string | null,
    payment: { amount: string; currency: string; transactionId: string },
  ) =>
    [
      `⚠️ Оплачено продление заблокированного ключа ${key} (заказ №${order.id}, ${what(order)}): ` +
        `${payment.amount} ${payment.currency}, транзакция ${payment.transactionId}.`,
      `Покупатель: ${who(order.userId, username)}`,
      "Ключ забанили после того, как покупатель оформил продление. Дни добавлены к ключу, но он остаётся " +
        (payment.currency === "XTR"
          ? "заблокированным: разблокируйте ключ на его странице в панели или верните звёзды кнопкой «Вернуть звёзды» на странице заказа."
          : "заблокированным: разблокируйте ключ на его странице в панели или верните деньги покупателю."),
    ].join("\n"),

  duplicatePayment: (
    order: OrderFacts,
    username: string | null,
    payment: { amount: string; currency: string; transactionId: string },
  ) =>
    [
      `⚠️ Повторная оплата заказа №${order.id} (${what(order)}): ${payment.amount} ${payment.currency}, ` +
        `транзакция ${payment.transactionId}.`,
      `Заказ уже был оплачен раньше. Покупатель: ${who(order.userId, username)}`,
      payment.currency === "XTR"
        ? "Верните звёзды кнопкой «Вернуть звёзды» на странице заказа в панели или выдайте ему ещё один ключ вручную."
        : "Верните деньги покупателю или выдайте ему ещё один ключ вручную.",
    ].join("\n"),

  /** A Stars payment that fitted no order of the payer: given back at once (`returned`), or to give back by hand. */
  strayStarsPayment: (
    userId: number,
    username: string | null,
    payment: { payload: string; stars: number; chargeId: string; problem: string },
    returned: boolean,
  ) =>
    [
      `⚠️ Оплата звёздами не подошла к заказу: ${payment.problem}.`,
      `Покупатель: ${who(userId, username)}, ${payment.stars} ⭐, счёт «${payment.payload.slice(0, 32)}», платёж ${payment.chargeId}`,
      returned
        ? "Звёзды возвращены покупателю автоматически."
        : "Telegram не вернул звёзды автоматически — верните их вручную (refundStarPayment) или свяжитесь с покупателем.",
    ].join("\n"),

  /** `reason` is the refusal in the owner's words, as the AnyPay notification checks give it. */
  refusedNotification: (reason: string, fields: Record<string, unknown>) => {
    const field = (name: string) => (typeof fields[name] === "string" ? String(fields[name]).slice(0, 64) : "—");
    return [
      `⚠️ Магазин отклонил уведомление AnyPay об оплате: ${reason}.`,
      `Заказ (pay_id): ${field("pay_id")}, транзакция ${field("transaction_id")}, сумма ${field("amount")} ${field("currency") === "—" ? "" : field("currency")}`.trimEnd(),
      "Если покупатель заплатил, он пока ничего не получил: исправьте причину — AnyPay повторит уведомление — " +
        "или выдайте ключ вручную. Все отклонённые уведомления — в панели, вкладка «Заказы».",
    ].join("\n");
  },

  deliveryBlocked: (
    delivery: { orderId: number; userId: number; productName: string; days: number },
    username: string | null,
  ) =>
    [
      `Покупатель ${who(delivery.userId, username)} заблокировал бота: заказ №${delivery.orderId} ` +
        `${what(delivery)} оплачен, но не доставлен.`,
      "Ключ — в панели, вкладка «Заказы». Если покупатель снова напишет боту, доставка повторится сама.",
    ].join("\n"),

  deliveryFailed: (
    delivery: { orderId: number; userId: number; productName: string; days: number; attempts: number },
    username: string | null,
    error: string,
  ) =>
    [
      `Не удалось доставить заказ №${delivery.orderId} ${what(delivery)} покупателю ${who(delivery.userId, username)} ` +
        `после ${delivery.attempts} попыток: ${error.slice(0, 200)}`,
      "Ключ — в панели, вкладка «Заказы»: выдайте его вручную или повторите доставку.",
    ].join("\n"),
};

// A sharing alert (docs/panel.md#sharing-alerts): one message per key per period to every admin, with three buttons;
// once one admin presses one, every admin's copy says who did what, without the buttons.

/** What an alert tells about the key. */
export type SharingAlertFacts = {
  key: string;
  productName: string;
  days: number;
  buyer: { id: number; username: string | null } | null;
  gift: boolean;
  hwid: string | null;
  uuids: number;
  mismatches: number;
  hours: number;
  /** The key's page in the panel. */
  url: string;
};

export type SharingAction = "ban" | "reset" | "ignore";

const SHARING_DONE: Record<SharingAction, string> = {
  ban: "ключ забанен",
  reset: "HWID сброшен: ключ привяжется к следующему ПК",
  ignore: "оставлен как есть",
};

export const sharingAlertTexts = {
  buttons: { ban: "🚫 Забанить", reset: "♻️ Сбросить HWID", ignore: "👌 Оставить" } satisfies Record<
    SharingAction,
    string
  >,

  alert: (f: SharingAlertFacts) =>
    [
      "🔑 Похоже, ключ передают другим.",
      `Ключ: ${f.key}`,
      `Товар: ${f.productName} ${daysLabel(f.days)}`,
      `Покупатель: ${f.buyer ? who(f.buyer.id, f.buyer.username) : f.gift ? "выдан без оплаты" : "—"}`,
      `За ${f.hours} ч: ${counted(f.uuids, ["чужой ПК", "чужих ПК", "чужих ПК"])}, ` +
        `${counted(f.mismatches, ["отказ", "отказа", "отказов"])} «HWID mismatch».`,
      `Привязан к ПК: ${f.hwid ?? "— (HWID сброшен)"}`,
      `Страница ключа: ${f.url}`,
    ].join("\n"),

  /** The alert once decided: `by` is the admin as the others know them, `at` already in Moscow time. */
  resolved: (f: SharingAlertFacts, action: SharingAction, by: string, at: string) =>
    `${sharingAlertTexts.alert(f)}\n\n✅ ${by}: ${SHARING_DONE[action]} (${at}).`,

  /** The pressing admin's notice. */
  done: (action: SharingAction) =>
    action === "ban" ? "Ключ забанен." : action === "reset" ? "HWID сброшен." : "Ключ оставлен как есть.",
  already: (action: SharingAction, by: string) => `Уже решено: ${by} — ${SHARING_DONE[action]}.`,
  GONE: "Это оповещение больше не действует.",
};

/** An admin as the others know them: «Иван (@ivan)», else the Telegram id. */
export const adminName = (admin: { id: number; firstName: string | null; username: string | null }) =>
  admin.firstName && admin.username
    ? `${admin.firstName} (@${admin.username})`
    : admin.username
      ? `@${admin.username}`
      : (admin.firstName ?? String(admin.id));
