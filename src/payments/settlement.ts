import { log } from "../lib/log.ts";
import type { Shop } from "../shop/index.ts";
import type { Messenger } from "../shop/messenger.ts";
import type { IncomingPayment, PaymentOutcome } from "../shop/orders/payments.ts";
import { alertTexts } from "../shop/texts/admins.ts";
import { paidNoStockText } from "../shop/texts/buyers.ts";
import { alertAdmins } from "../shop/users/admins.ts";

/**
 * Where every provider's checked payment ends, so a test payment runs exactly the code a real one runs: the order is
 * paid (shop.orders.markPaid: once, however often the payment is reported), and whoever must know about an outcome
 * that needs a person is told in Telegram. Those messages follow the payment: nobody who reports one waits for them.
 */
export function createSettlement(deps: { shop: Shop; messenger: Messenger }) {
  const { shop, messenger } = deps;
  const followUps = new Set<Promise<void>>();

  /** Runs Telegram work after the answer: a failure is logged, and idle() waits for what is still on its way. */
  function followUp(name: string, work: () => Promise<unknown>): void {
    const p: Promise<void> = work()
      .then(() => {})
      .catch((error) => log.warn(`${name} failed`, { error: (error as Error).message }))
      .finally(() => followUps.delete(p));
    followUps.add(p);
  }

  async function usernameOf(userId: number): Promise<string | null> {
    return (await shop.users.byId(userId))?.username ?? null;
  }

  /** Applies a verified payment and tells whoever must know about an outcome that needs a person. */
  async function settle(payment: IncomingPayment): Promise<PaymentOutcome> {
    const outcome = await shop.orders.markPaid(payment);
    if (outcome.kind === "paid_no_stock") {
      const order = outcome.order;
      followUp("paid_no_stock alert", async () => {
        const username = await usernameOf(order.userId);
        await alertAdmins(shop.admins, messenger, alertTexts.paidNoStock(order, username, payment));
        await messenger.sendText(order.userId, paidNoStockText(order));
      });
    } else if (outcome.kind === "paid" && outcome.renewal?.banned) {
      // The money arrived for a key banned after the renewal was ordered: the buyer hears it in the renewal message
      // (the delivery outbox); the admins decide between unbanning (the days are there) and a refund.
      const order = outcome.order;
      const key = outcome.renewal.key;
      followUp("renewal of a banned key alert", async () => {
        const username = await usernameOf(order.userId);
        await alertAdmins(shop.admins, messenger, alertTexts.renewalOfBannedKey(order, key, username, payment));
      });
    } else if (outcome.kind === "duplicate") {
      const order = outcome.order;
      followUp("duplicate payment alert", async () => {
        const username = await usernameOf(order.userId);
        await alertAdmins(shop.admins, messenger, alertTexts.duplicatePayment(order, username, payment));
      });
    }
    return outcome;
  }

  /** Tells the admins in Telegram, after the answer. */
  function alert(name: string, text: string): void {
    followUp(name, () => alertAdmins(shop.admins, messenger, text));
  }

  /** Resolves when the Telegram messages that follow payments have been sent (tests, graceful shutdown). */
  async function idle(): Promise<void> {
    while (followUps.size > 0) await Promise.all([...followUps]);
  }

  return { settle, alert, followUp, idle };
}

export type Settlement = ReturnType<typeof createSettlement>;
