import { log } from "../lib/log.ts";
import type { Shop } from "../shop/index.ts";
import type { Messenger } from "../shop/messenger.ts";
import type { Order } from "../shop/orders/orders.ts";
import type { StarsRefund } from "../shop/orders/payments.ts";
import type { Settings } from "../shop/settings/settings.ts";
import { alertTexts } from "../shop/texts/admins.ts";
import {
  renewalStarsRefusal,
  STARS_PAYMENT_HELD,
  STARS_PAYMENT_RETURNED,
  starsDuplicateText,
  starsInvoiceText,
  starsRefundedText,
  starsRefusal,
} from "../shop/texts/buyers.ts";
import type { PaymentProvider } from "./provider.ts";
import type { Settlement } from "./settlement.ts";

/** How long giving Stars back waits for Telegram before it is reported as failed (and may be tried again). */
const REFUND_TIMEOUT_MS = 15_000;

/** Telegram's currency code for Stars; an invoice in it is sent with an empty provider token. */
export const STARS_CURRENCY = "XTR";

/** An order's invoice in Stars, as sendInvoice takes it (the bot sends it). */
export type StarsInvoice = {
  title: string;
  description: string;
  /** The order id: what pre_checkout_query and successful_payment bring back. */
  payload: string;
  currency: typeof STARS_CURRENCY;
  /** Telegram requires an empty provider token for payments in Stars. */
  providerToken: "";
  prices: { label: string; amount: number }[];
};

/** What Telegram tells the bot about an invoice of ours: the buyer is about to pay it, or has paid it. */
export type StarsNotice =
  | {
      kind: "pre_checkout";
      userId: number;
      currency: string;
      totalAmount: number;
      payload: string;
    }
  | {
      kind: "paid";
      userId: number;
      currency: string;
      totalAmount: number;
      payload: string;
      /** telegram_payment_charge_id: the payment's id, kept in the ledger (and needed to give it back). */
      chargeId: string;
    };

/**
 * pre_checkout_query: ok, or why not in the buyer's words. successful_payment: what to tell the buyer in the chat, if
 * anything (the key itself goes out through the delivery outbox).
 */
export type StarsAnswer = { ok: true; text?: string } | { ok: false; reason: string };

/** Why an order cannot be paid in Stars by this buyer now, as a key of starsRefusal; null when it can. */
export type StarsRefusal = keyof typeof starsRefusal;

/** The refusal in the buyer's words: a renewal's next step is «Продлить» in «Мои покупки», not the catalogue. */
const refusalText = (refused: StarsRefusal, order: Order | null): string =>
  (order?.kind === "renewal" ? renewalStarsRefusal[refused] : undefined) ?? starsRefusal[refused];

const PAID: readonly Order["status"][] = ["paid", "delivered", "paid_no_stock", "failed"];

/**
 * Telegram Stars (docs/panel.md#telegram-stars): an invoice in the chat (sendInvoice, currency XTR, the order id as
 * payload), the check before the money is taken (pre_checkout_query: ok only while the order can still be paid at
 * that amount by that buyer), and the payment (successful_payment), settled like any other — exactly once, by its
 * charge id. Ready while switched on in the settings, for a price that has Stars. A payment Telegram reports for
 * no order of the payer's is given back at once; a paid order that got no key can be given back from the panel.
 */
export function createTelegramStars(deps: { shop: Shop; settlement: Settlement; messenger: Messenger }) {
  const { shop, settlement, messenger } = deps;

  /** Whether Stars are open at all: switched on, and a bot to send the invoice through. */
  const open = (settings: Settings) => settings.starsEnabled && Boolean(settings.botToken);

  /**
   * Why this buyer cannot pay this order `stars` Stars now (`stars` undefined: at the order's own price).
   * `keyBanned`: the order renews a key that is banned now.
   */
  function refusal(
    order: Order | null,
    userId: number,
    settings: Settings,
    stars?: number,
    keyBanned = false,
    now = new Date(),
  ): StarsRefusal | null {
    if (!order) return "noOrder";
    if (order.userId !== userId) return "notYours";
    if (PAID.includes(order.status)) return "alreadyPaid";
    if (order.status !== "pending" || order.reservedUntil.getTime() <= now.getTime()) return "expired";
    if (order.stars === null || order.stars <= 0 || (stars !== undefined && stars !== order.stars)) {
      return "wrongAmount";
    }
    if (!open(settings)) return "off";
    if (keyBanned) return "keyBanned";
    return null;
  }

  /** Whether the order renews a key that is banned now: such a renewal is not paid (the bot offers none). */
  async function renewsBannedKey(order: Order | null): Promise<boolean> {
    if (order?.kind !== "renewal" || order.keyId === null) return false;
    return (await shop.keys.byId(order.keyId))?.bannedAt != null;
  }

  /** The order id an invoice's payload names, or null for anything that is not one of ours. */
  const orderIdOf = (payload: string) => (/^\d{1,15}$/.test(payload) ? Number(payload) : null);

  async function orderOf(payload: string): Promise<Order | null> {
    const id = orderIdOf(payload);
    return id === null ? null : await shop.orders.byId(id);
  }

  /** The invoice for the buyer's press of «Оплатить ⭐», or why there is none. */
  async function invoice(
    userId: number,
    orderId: number,
  ): Promise<{ ok: true; invoice: StarsInvoice } | { ok: false; reason: string }> {
    const [order, settings] = await Promise.all([shop.orders.byId(orderId), shop.settings.get()]);
    const refused = refusal(order, userId, settings, undefined, await renewsBannedKey(order));
    if (refused) {
      log.info("stars invoice refused", { orderId, userId, reason: refused });
      return { ok: false, reason: refusalText(refused, order) };
    }
    const { title, description, label } = starsInvoiceText(order!);
    return {
      ok: true,
      invoice: {
        title,
        description,
        payload: String(order!.id),
        currency: STARS_CURRENCY,
        providerToken: "",
        prices: [{ label, amount: order!.stars! }],
      },
    };
  }

  async function preCheckout(notice: Extract<StarsNotice, { kind: "pre_checkout" }>): Promise<StarsAnswer> {
    const [order, settings] = await Promise.all([orderOf(notice.payload), shop.settings.get()]);
    const refused =
      notice.currency !== STARS_CURRENCY
        ? "wrongAmount"
        : refusal(order, notice.userId, settings, notice.totalAmount, await renewsBannedKey(order));
    if (refused) {
      log.warn("stars pre-checkout refused", {
        payload: notice.payload.slice(0, 32),
        userId: notice.userId,
        stars: notice.totalAmount,
        reason: refused,
      });
      return { ok: false, reason: refusalText(refused, order) };
    }
    return { ok: true };
  }

  /**
   * A payment that fits no order of the payer's (another buyer's order, another amount or currency, no order at all):
   * Telegram only charges what pre_checkout_query allowed, so this is never an invoice of ours paid as sent. It is
   * settled against nothing and given back at once; the admins are told either way.
   */
  async function stray(notice: Extract<StarsNotice, { kind: "paid" }>, problem: string): Promise<StarsAnswer> {
    log.error("stars payment fits no order: giving it back", {
      payload: notice.payload.slice(0, 32),
      userId: notice.userId,
      stars: notice.totalAmount,
      chargeId: notice.chargeId,
      problem,
    });
    let returned = true;
    try {
      await messenger.refundStars(notice.userId, notice.chargeId, { signal: AbortSignal.timeout(REFUND_TIMEOUT_MS) });
    } catch (error) {
      returned = false;
      log.error("could not give a stray stars payment back", {
        chargeId: notice.chargeId,
        error: (error as Error).message,
      });
    }
    const username = (await shop.users.byId(notice.userId))?.username ?? null;
    settlement.alert(
      "stray stars payment alert",
      alertTexts.strayStarsPayment(
        notice.userId,
        username,
        { payload: notice.payload, stars: notice.totalAmount, chargeId: notice.chargeId, problem },
        returned,
      ),
    );
    return { ok: true, text: returned ? STARS_PAYMENT_RETURNED : STARS_PAYMENT_HELD };
  }

  async function paid(notice: Extract<StarsNotice, { kind: "paid" }>): Promise<StarsAnswer> {
    const order = await orderOf(notice.payload);
    if (!order) return stray(notice, `заказа «${notice.payload.slice(0, 32)}» нет в магазине`);
    if (order.userId !== notice.userId) return stray(notice, `заказ №${order.id} — другого покупателя`);
    if (notice.currency !== STARS_CURRENCY) return stray(notice, `валюта ${notice.currency.slice(0, 8)}, а не звёзды`);
    if (order.stars === null || notice.totalAmount !== order.stars) {
      return stray(notice, `сумма ${notice.totalAmount} ⭐, а заказ №${order.id} стоит ${order.stars ?? "—"} ⭐`);
    }
    // Whatever became of the order since pre_checkout_query (its reservation ran out, its key went to someone
    // else), the Stars are taken: it is paid like a late AnyPay payment — another key from stock, or paid_no_stock
    // for the admins, whose Stars can be given back from the panel.
    const outcome = await settlement.settle({
      orderId: order.id,
      transactionId: notice.chargeId,
      amount: String(notice.totalAmount),
      currency: STARS_CURRENCY,
      method: null,
      test: false,
      source: "telegram_stars",
    });
    log.info("stars payment", { orderId: order.id, chargeId: notice.chargeId, outcome: outcome.kind });
    switch (outcome.kind) {
      case "paid":
      case "already":
      case "paid_no_stock":
        return { ok: true };
      case "duplicate":
        return { ok: true, text: starsDuplicateText(order.id) };
      case "not_found":
        return stray(notice, `заказа №${order.id} нет в магазине`);
      case "transaction_conflict":
        // The same charge id already paid another order: Telegram's ids are unique, so this is not a new payment.
        log.error("stars charge id already paid another order", { orderId: order.id, chargeId: notice.chargeId });
        return { ok: true };
    }
  }

  function receive(notice: StarsNotice): Promise<StarsAnswer> {
    return notice.kind === "pre_checkout" ? preCheckout(notice) : paid(notice);
  }

  /**
   * The owner's «Вернуть звёзды» on the order page: a Stars payment that bought nothing goes back to the buyer
   * (refundStarPayment), once however often it is pressed, and the buyer is told.
   */
  async function refund(orderId: number, transactionId: string, by: string): Promise<StarsRefund> {
    const result = await shop.orders.refundStars({
      orderId,
      transactionId,
      by,
      giveBack: async (userId, chargeId) => {
        try {
          // The order and its payment stay locked while Telegram answers: it is not waited for forever.
          await messenger.refundStars(userId, chargeId, { signal: AbortSignal.timeout(REFUND_TIMEOUT_MS) });
        } catch (error) {
          // Given back before (a refund whose answer was lost on the way): the ledger catches up with Telegram.
          if (!/CHARGE_ALREADY_REFUNDED/.test((error as Error).message)) throw error;
          log.warn("telegram says these stars were given back already", { orderId, chargeId });
        }
      },
    });
    log.info("stars refund", { orderId, transactionId, by, outcome: result.kind });
    if (result.kind === "refunded") {
      const { order, payment } = result;
      settlement.followUp("stars refund message", () =>
        messenger.sendText(order.userId, starsRefundedText(order, payment.amount.replace(/\.0+$/, ""))),
      );
    }
    return result;
  }

  const provider: PaymentProvider<StarsNotice, StarsAnswer> = {
    name: "telegram_stars",
    ready: (settings, _payer, price) => open(settings) && price.stars !== null && price.stars > 0,
    option(order, settings) {
      if (!open(settings) || order.stars === null || order.stars <= 0) return null;
      return { provider: "telegram_stars", orderId: order.id, stars: order.stars };
    },
    receive,
  };
  return { ...provider, invoice, refund };
}

export type TelegramStars = ReturnType<typeof createTelegramStars>;
