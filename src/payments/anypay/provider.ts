import type { Config } from "../../config.ts";
import { log } from "../../lib/log.ts";
import type { Shop } from "../../shop/index.ts";
import { alertTexts } from "../../shop/texts/admins.ts";
import type { PaymentProvider } from "../provider.ts";
import type { Settlement } from "../settlement.ts";
import { paymentUrl } from "./link.ts";
import { amountInKopecks, parseNotification, signatureMatches } from "./notification.ts";

/** A notification as it reached us: its fields exactly as sent (null: the body was not a form), and from where. */
export type AnypayNotice = { fields: Record<string, unknown> | null; ip: string | null };

/** What the notification endpoint answers: plain text, `OK` for anything accepted or already processed. */
export type NotificationAnswer = { status: number; body: string };

/**
 * AnyPay (docs/operator.md#anypay): the signed link to its payment page, and its notifications, every check in
 * turn, ending in the checkout's settlement. Ready once the merchant id and the secret key are in the settings.
 */
export function createAnypay(deps: { shop: Shop; settlement: Settlement; config: Pick<Config, "anypayAllowedIps"> }) {
  const { shop, settlement, config } = deps;

  function reject(status: number, reason: string, context: Record<string, unknown>): NotificationAnswer {
    log.warn(`anypay notification rejected: ${reason}`, context);
    return { status, body: `Rejected: ${reason.split(" — ")[0]}` };
  }

  /**
   * A refusal of a notification that came from an AnyPay address: behind it there may be a buyer who paid and got
   * nothing, so besides the log line it is recorded for the panel's orders tab, and the admins are told in Telegram
   * the first time a transaction is refused for a reason (AnyPay's retries only add to the count). `owner` is the
   * reason in the owner's words. Recording is best effort: the answer to AnyPay never waits on Telegram.
   */
  async function refuse(
    status: number,
    reason: string,
    owner: string,
    context: Record<string, unknown>,
    fields: Record<string, unknown>,
    ip: string,
  ): Promise<NotificationAnswer> {
    const answer = reject(status, reason, context);
    try {
      const { first } = await shop.refusedNotifications.record({ ip, reason: owner, fields });
      if (first) settlement.alert("refused notification alert", alertTexts.refusedNotification(owner, fields));
    } catch (error) {
      log.error("could not record a refused anypay notification", { error: (error as Error).message });
    }
    return answer;
  }

  /**
   * The refusal of a notification from an address that is not AnyPay's (ANYPAY_ALLOWED_IPS), or null when it may
   * proceed. Asked before the body is read: a stranger gets nothing buffered or parsed, only the refusal.
   */
  function refuseSource(ip: string | null): NotificationAnswer | null {
    if (ip !== null && config.anypayAllowedIps.includes(ip)) return null;
    return reject(403, "source address is not an AnyPay address — see ANYPAY_ALLOWED_IPS", { ip });
  }

  /**
   * AnyPay's notification, every check in turn (docs/operator.md#what-the-shop-answers-anypay). A rejection changes
   * no order and leaves one log line that says what to look at; an accepted or already processed payment answers
   * `OK` so AnyPay stops retrying, and so does a signed one whose status is not `paid` (it changes nothing either).
   */
  async function receive({ fields: raw, ip }: AnypayNotice): Promise<NotificationAnswer> {
    const refused = refuseSource(ip);
    if (refused) return refused;
    const from = ip!;
    if (raw === null) {
      return refuse(
        400,
        "malformed notification: the body is not a form",
        "тело уведомления — не форма",
        { ip },
        {},
        from,
      );
    }
    const parsed = parseNotification(raw);
    if (!parsed.ok) {
      return refuse(
        400,
        `malformed notification: ${parsed.problem}`,
        `уведомление не разобрать: ${parsed.problem}`,
        { ip },
        raw,
        from,
      );
    }
    const n = parsed.value;
    const context = { ip, payId: n.pay_id, transactionId: n.transaction_id, status: n.status };
    const no = (status: number, reason: string, owner: string, extra: Record<string, unknown> = {}) =>
      refuse(status, reason, owner, { ...context, ...extra }, n, from);
    const settings = await shop.settings.get();
    if (!settings.anypayMerchantId || !settings.anypaySecretKey) {
      // Not the payer's fault: 503 makes AnyPay retry, and the payment goes through once the settings are filled.
      return no(
        503,
        "AnyPay is not configured — set the merchant id and secret key in the panel",
        "AnyPay не настроен — укажите ID магазина и секретный ключ в «Основных настройках»; AnyPay повторит уведомление",
      );
    }
    if (n.merchant_id !== settings.anypayMerchantId) {
      return no(
        403,
        "merchant_id is not this shop's — check the AnyPay merchant id in the panel",
        `ID магазина ${n.merchant_id} не совпадает с указанным в панели — проверьте ID магазина AnyPay`,
        { merchantId: n.merchant_id },
      );
    }
    if (!signatureMatches(n, settings.anypaySecretKey)) {
      return no(
        403,
        "signature does not match — check the AnyPay secret key in the panel",
        "подпись не совпадает — проверьте секретный ключ AnyPay в «Основных настройках»",
      );
    }
    if (n.status !== "paid") {
      // A genuine notice from AnyPay about something else (refund, canceled, waiting…): nothing to do here, but any
      // answer other than OK makes AnyPay send it again and again.
      log.warn(`anypay notification ignored: status is "${n.status}", only "paid" completes an order`, context);
      return { status: 200, body: "OK" };
    }
    if (n.test === "1" && !settings.testPayments) {
      return no(
        403,
        "test payment while test payments are off — turn them on in the panel to accept",
        "тестовый платёж, а тестовые платежи в панели выключены",
      );
    }
    const order = await shop.orders.byId(Number(n.pay_id));
    if (!order) {
      return no(404, "no order with this pay_id", `заказа №${n.pay_id} нет в магазине`);
    }
    if (n.currency !== "RUB") {
      return no(400, `currency ${n.currency} is not the order's RUB`, `валюта ${n.currency}, а заказ — в рублях`);
    }
    if (amountInKopecks(n.amount) !== order.amountRub * 100) {
      return no(
        400,
        `amount ${n.amount} is not the order's ${order.amountRub}`,
        `сумма ${n.amount} не равна сумме заказа ${order.amountRub} ₽`,
      );
    }
    // The panel's switch is "test payments for admins": with AnyPay's project in test mode every buyer's payment
    // page would succeed without money, so a test payment completes only an admin's own order.
    if (n.test === "1" && !(await shop.admins.isAdmin(order.userId))) {
      return no(
        403,
        "test payment for an order of a buyer who is not an admin — only admins may pay in test mode",
        `тестовый платёж за заказ покупателя ${order.userId}, который не администратор`,
        { userId: order.userId },
      );
    }

    const outcome = await settlement.settle({
      orderId: order.id,
      transactionId: n.transaction_id,
      amount: n.amount,
      currency: n.currency,
      method: n.method ?? null,
      email: n.email ?? null,
      profit: n.profit ?? null,
      test: n.test === "1",
      source: "anypay",
    });
    switch (outcome.kind) {
      case "paid":
      case "paid_no_stock":
      case "duplicate":
        log.info("anypay notification accepted", { ...context, outcome: outcome.kind });
        return { status: 200, body: "OK" };
      case "already":
        log.info("anypay notification already processed", context);
        return { status: 200, body: "OK" };
      case "not_found":
        return no(404, "no order with this pay_id", `заказа №${n.pay_id} нет в магазине`);
      case "transaction_conflict":
        log.error("anypay transaction_id already paid another order — check it in AnyPay's dashboard", context);
        return no(
          409,
          "transaction_id was already applied to another order",
          `транзакция ${n.transaction_id} уже оплатила другой заказ — проверьте её в кабинете AnyPay`,
        );
    }
  }

  const provider: PaymentProvider<AnypayNotice, NotificationAnswer> = {
    name: "anypay",
    ready: (settings, _payer, price) => price.rub > 0 && Boolean(settings.anypayMerchantId && settings.anypaySecretKey),
    option(order, settings) {
      // A code that covers the whole price leaves nothing to pay: AnyPay takes no zero payment.
      if (order.amountRub === 0) return null;
      if (!settings.anypayMerchantId || !settings.anypaySecretKey) {
        log.warn(
          "a buyer wanted to pay but AnyPay is not configured — set the merchant id and secret key in the panel",
          {
            orderId: order.id,
          },
        );
        return null;
      }
      const credentials = { merchantId: settings.anypayMerchantId, secretKey: settings.anypaySecretKey };
      return { provider: "anypay", url: paymentUrl(credentials, order), rub: order.amountRub };
    },
    receive,
  };
  return { ...provider, refuseSource };
}

export type Anypay = ReturnType<typeof createAnypay>;
