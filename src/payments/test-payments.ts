import { log } from "../lib/log.ts";
import type { Shop } from "../shop/index.ts";
import { testPaymentNotMade } from "../shop/texts/admins.ts";
import type { PaymentProvider } from "./provider.ts";
import type { Settlement } from "./settlement.ts";

/** An admin pressed «Оплатить (тест)» under an order. */
export type TestPaymentNotice = { orderId: number; adminTelegramId: number };
export type TestPaymentAnswer = { ok: true } | { ok: false; reason: string };

/**
 * The admins' test payments («Тестовые платежи для администраторов» in the panel): an admin pays their own order
 * without money, and it goes through the same settlement as a real payment, so a test purchase exercises exactly
 * the code a buyer's does. Open only to admins, only while the switch is on.
 */
export function createTestPayments(deps: {
  shop: Shop;
  settlement: Settlement;
}): PaymentProvider<TestPaymentNotice, TestPaymentAnswer> {
  const { shop, settlement } = deps;

  /** Every condition checked again here, whatever the button's screen said: the press may be old, or forged. */
  async function receive({ orderId, adminTelegramId }: TestPaymentNotice): Promise<TestPaymentAnswer> {
    const settings = await shop.settings.get();
    if (!settings.testPayments) return { ok: false, reason: testPaymentNotMade.off };
    if (!(await shop.admins.isAdmin(adminTelegramId))) {
      log.warn("test payment refused: not an admin", { orderId, telegramId: adminTelegramId });
      return { ok: false, reason: testPaymentNotMade.notAdmin };
    }
    const order = await shop.orders.byId(orderId);
    if (!order || order.userId !== adminTelegramId) return { ok: false, reason: testPaymentNotMade.noOrder };
    const outcome = await settlement.settle({
      orderId,
      transactionId: `test:${orderId}`,
      amount: String(order.amountRub),
      currency: "RUB",
      method: "test",
      test: true,
      source: "test",
    });
    log.info("test payment", { orderId, adminId: adminTelegramId, outcome: outcome.kind });
    switch (outcome.kind) {
      case "paid":
      case "already":
        return { ok: true };
      case "paid_no_stock":
        return { ok: false, reason: testPaymentNotMade.noStock };
      case "duplicate":
        return { ok: false, reason: testPaymentNotMade.alreadyPaid };
      case "not_found":
      case "transaction_conflict":
        return { ok: false, reason: testPaymentNotMade.noOrder };
    }
  }

  return {
    name: "test",
    ready: (settings, payer) => payer.admin && settings.testPayments,
    option: (order) => ({ provider: "test", orderId: order.id }),
    receive,
  };
}
