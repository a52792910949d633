import { daysLabel } from "../lib/durations.ts";
import { log } from "../lib/log.ts";
import type { Messenger } from "./messenger.ts";
import type { Order } from "./orders/orders.ts";
import type { Admins } from "./users/admins.ts";

/**
 * Messages to the shop's admins in Telegram about money or keys that need a person: a payment with no key left, a
 * payment received twice, a purchase that could not be delivered. Best effort: the same facts are in the panel and
 * in the log, so a Telegram outage loses a nudge, never the information.
 */
export async function alertAdmins(admins: Admins, messenger: Messenger, text: string): Promise<number> {
  const list = await admins.list();
  if (list.length === 0) {
    log.warn("no bot admins to alert; add one in the panel's Admins tab", { alert: text.split("\n")[0] });
    return 0;
  }
  let sent = 0;
  for (const admin of list) {
    try {
      await messenger.sendText(admin.telegramId, text);
      sent++;
    } catch (error) {
      log.warn("admin alert not delivered", { adminId: admin.telegramId, error: (error as Error).message });
    }
  }
  return sent;
}

const who = (userId: number, username: string | null) => (username ? `${userId} (@${username})` : String(userId));
const what = (order: { productName: string; days: number }) => `«${order.productName} ${daysLabel(order.days)}»`;

export const alertTexts = {
  paidNoStock: (order: Order, username: string | null, payment: { amount: string; transactionId: string }) =>
    [
      `⚠️ Заказ №${order.id} оплачен, но ключей ${what(order)} не осталось.`,
      `Покупатель: ${who(order.userId, username)}`,
      `Сумма: ${payment.amount} ₽, транзакция ${payment.transactionId}`,
      "Добавьте ключи этого товара и длительности — покупатель получит ключ автоматически. " +
        "Если вы вернули деньги, закройте заказ в панели.",
    ].join("\n"),

  duplicatePayment: (
    order: Order,
    username: string | null,
    payment: { amount: string; currency: string; transactionId: string },
  ) =>
    [
      `⚠️ Повторная оплата заказа №${order.id} (${what(order)}): ${payment.amount} ${payment.currency}, ` +
        `транзакция ${payment.transactionId}.`,
      `Заказ уже был оплачен раньше. Покупатель: ${who(order.userId, username)}`,
      "Верните деньги покупателю или выдайте ему ещё один ключ вручную.",
    ].join("\n"),

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

/** To the buyer whose payment arrived after the last key was gone. */
export function paidNoStockBuyerText(order: Order): string {
  return (
    `Оплата заказа №${order.id} получена, но ${what(order)} только что закончился. ` +
    "Администратор уже знает: ключ придёт сюда, как только появится, или с вами свяжутся."
  );
}
