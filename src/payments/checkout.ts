import type { Config } from "../config.ts";
import type { DurationDays } from "../lib/durations.ts";
import { log } from "../lib/log.ts";
import type { Shop } from "../shop/index.ts";
import type { OwnedKey } from "../shop/keys/self-service.ts";
import type { Messenger } from "../shop/messenger.ts";
import type { Order, PromoRefused } from "../shop/orders/orders.ts";
import type { RenewalOffer, RenewalRefusal } from "../shop/orders/renewals.ts";
import type { CatalogueProduct, Offer } from "../shop/products/catalogue.ts";
import { discounted, type Price } from "../shop/promos/discount.ts";
import type { AppliedPromo } from "../shop/promos/promos.ts";
import type { Settings } from "../shop/settings/settings.ts";
import { alertTexts } from "../shop/texts/admins.ts";
import { createAnypay } from "./anypay/provider.ts";
import type { Payer, PaymentOption } from "./provider.ts";
import { createSettlement } from "./settlement.ts";
import { createTelegramStars } from "./telegram-stars.ts";
import { createTestPayments } from "./test-payments.ts";

/** The alert that nobody can pay goes to the admins at most this often, however many buyers meet it. */
const NOT_READY_ALERT_EVERY_MS = 10 * 60_000;

/** A duration as the buyer would pay for it now. */
export type Quote =
  | { kind: "ok"; product: CatalogueProduct; offer: Offer }
  /** The price changed since the buyer saw it: show the new one and ask again. */
  | { kind: "price_changed"; product: CatalogueProduct; rub: number }
  /** Off sale: the duration (`product` still on sale) or the whole product (`product` null). */
  | { kind: "gone"; product: CatalogueProduct | null };

/** Why a promo code was not taken, whether it was typed or came back with «Подтвердить». */
export type PromoRefusal =
  /** The code does not apply, and `verdict` says why (and what it is for instead). */
  | { kind: "promo_refused"; verdict: PromoRefused }
  /** This buyer typed too many unknown codes: codes are not checked for them for `retryAfterS`. */
  | { kind: "promo_guessing"; retryAfterS: number };

/** A duration with a promo code applied, as the buyer would pay for it now. */
export type PromoQuote =
  | { kind: "ok"; product: CatalogueProduct; offer: Offer; promo: AppliedPromo; price: Price }
  | (PromoRefusal & { product: CatalogueProduct; offer: Offer })
  | Exclude<Quote, { kind: "ok" }>;

/** What confirming a purchase came to. */
export type Placement =
  /** The order holds a key for the buyer (a new order, or their unpaid one for the same thing), and how to pay it. */
  | { kind: "placed"; order: Order; options: PaymentOption[] }
  /** A promo code covered the whole price: the order is paid, and the key is on its way (the delivery outbox). */
  | { kind: "paid_by_promo"; order: Order }
  /** No way to pay is open to this buyer: no order was placed, and the admins have been told. */
  | { kind: "no_way_to_pay" }
  | { kind: "price_changed"; rub: number }
  | { kind: "out_of_stock" }
  /** The product is archived or the duration is no longer for sale. */
  | { kind: "unavailable" }
  | PromoRefusal;

/** A renewal's duration as the buyer would pay for it now (no stock needed: the key is theirs already). */
export type RenewalQuote =
  | { kind: "ok"; key: OwnedKey; offer: RenewalOffer; offers: RenewalOffer[] }
  /** The price changed since the buyer saw it: show the durations again. */
  | { kind: "price_changed"; key: OwnedKey; offers: RenewalOffer[]; rub: number }
  /** This duration has no price any more; `offers` are those left. */
  | { kind: "duration_gone"; key: OwnedKey; offers: RenewalOffer[] }
  | RenewalRefusal;

/** A renewal's duration with a promo code applied. */
export type RenewalPromoQuote =
  | { kind: "ok"; key: OwnedKey; offer: RenewalOffer; promo: AppliedPromo; price: Price }
  | (PromoRefusal & { key: OwnedKey; offer: RenewalOffer })
  | Exclude<RenewalQuote, { kind: "ok" }>;

/** What confirming a renewal came to. */
export type RenewalPlacement =
  | { kind: "placed"; order: Order; key: OwnedKey; options: PaymentOption[] }
  | { kind: "paid_by_promo"; order: Order }
  | { kind: "no_way_to_pay" }
  | { kind: "price_changed"; rub: number; key: OwnedKey }
  /** This duration has no price any more; `offers` are those left. */
  | { kind: "duration_gone"; key: OwnedKey; offers: RenewalOffer[] }
  | RenewalRefusal
  | PromoRefusal;

/** Why an admin's «Оплатить (тест)» press is refused before anything is paid. */
export type TestPaymentRefusal = "not_admin" | "off" | "not_theirs";

/**
 * The one place that decides everything about paying for an order: which ways to pay are open (the providers), the
 * price, stock and the reservation (through shop.orders), the order itself and how to pay it; and where every
 * provider's payment is settled. The bot and the panel only ask it.
 */
export function createCheckout(deps: { shop: Shop; messenger: Messenger; config: Pick<Config, "anypayAllowedIps"> }) {
  const { shop, config } = deps;
  const settlement = createSettlement(deps);
  const anypay = createAnypay({ shop, settlement, config });
  const stars = createTelegramStars({ shop, settlement, messenger: deps.messenger });
  const testPayments = createTestPayments({ shop, settlement });
  /** In the order the payment screen offers them. */
  const providers = [anypay, stars, testPayments];

  async function payerOf(userId: number): Promise<{ settings: Settings; payer: Payer }> {
    const [settings, admin] = await Promise.all([shop.settings.get(), shop.admins.isAdmin(userId)]);
    return { settings, payer: { userId, admin } };
  }

  /** The duration as on sale now, against the price the buyer saw (`seenRub`). */
  async function quote(productId: number, days: number, seenRub: number): Promise<Quote> {
    const product = await shop.catalogue.product(productId);
    const offer = product?.offers.find((o) => o.days === days);
    if (!product || !offer) return { kind: "gone", product };
    if (offer.rub !== seenRub) return { kind: "price_changed", product, rub: offer.rub };
    return { kind: "ok", product, offer };
  }

  /**
   * Asks the shop whether a code applies to this buyer's purchase, within the limit on unknown codes. The shop's
   * answer is a verdict; an unknown code counts against the buyer.
   */
  async function checkPromo(
    userId: number,
    productId: number,
    days: DurationDays,
    code: string,
  ): Promise<PromoRefusal | { kind: "ok"; promo: AppliedPromo }> {
    const allowed = await shop.limits.promoGuessAllowed(userId);
    if (!allowed.allowed) return { kind: "promo_guessing", retryAfterS: allowed.retryAfterS };
    const verdict = await shop.promos.check({ code, userId, productId, days });
    if (verdict.ok) return { kind: "ok", promo: verdict.promo };
    if (verdict.reason === "unknown") await shop.limits.promoGuessFailed(userId);
    log.info("promo code refused", { userId, code: verdict.code, reason: verdict.reason });
    return { kind: "promo_refused", verdict };
  }

  /**
   * The buyer typed a promo code on the confirmation: the price after it, or why it does not apply. A preview —
   * nothing is held until the buyer confirms (place() checks the code again, under its lock).
   */
  async function quotePromo(input: {
    userId: number;
    productId: number;
    days: number;
    /** The list price on the confirmation the buyer was looking at. */
    seenRub: number;
    code: string;
  }): Promise<PromoQuote> {
    const q = await quote(input.productId, input.days, input.seenRub);
    if (q.kind !== "ok") return q;
    const { product, offer } = q;
    const checked = await checkPromo(input.userId, input.productId, offer.days, input.code);
    if (checked.kind !== "ok") return { ...checked, product, offer };
    const price = discounted({ rub: offer.rub, stars: offer.stars }, checked.promo.discount);
    return { kind: "ok", product, offer, promo: checked.promo, price };
  }

  /**
   * Confirming a purchase: if a way to pay the price is open to the buyer, an order reserves a key for them
   * (shop.orders.place, which also takes the promo code's use), and each open way says how to pay it. With none
   * open no order is placed — holding a key for a payment that cannot happen would only hide it from others — and
   * the admins are told. An order a code makes free needs no way to pay: it is paid at once, through the same
   * settlement as any payment, and its key goes out through the delivery outbox.
   */
  async function place(input: {
    userId: number;
    productId: number;
    days: DurationDays;
    /** The price the buyer saw (after the code); a different current price is reported instead of charged. */
    seenRub: number;
    /** The promo code applied on the confirmation, if any. */
    promoCode?: string | null | undefined;
  }): Promise<Placement> {
    const { settings, payer } = await payerOf(input.userId);
    // The price as it will be, to know which ways can pay it; the order checks everything again under its locks.
    const offer = (await shop.catalogue.product(input.productId))?.offers.find((o) => o.days === input.days);
    let expected: Price = offer ? { rub: offer.rub, stars: offer.stars } : { rub: input.seenRub, stars: null };
    if (input.promoCode) {
      const checked = await checkPromo(input.userId, input.productId, input.days, input.promoCode);
      if (checked.kind !== "ok") return checked;
      expected = discounted(expected, checked.promo.discount);
    }
    if (!(await canPay(settings, payer, expected, { productId: input.productId, days: input.days }))) {
      return { kind: "no_way_to_pay" };
    }
    const result = await shop.orders.place({
      userId: input.userId,
      productId: input.productId,
      days: input.days,
      expectedRub: input.seenRub,
      promoCode: input.promoCode ?? null,
    });
    if (result.kind === "promo_refused") return result;
    if (!("order" in result)) return result;
    if (result.order.amountRub === 0) return await payByPromo(result.order);
    return { kind: "placed", order: result.order, options: await optionsFor(result.order, payer) };
  }

  /**
   * Whether some way to pay `expected` is open to this payer. A price of 0 needs none (a code pays it all). With
   * none open no order is placed, and the admins are told (at most every NOT_READY_ALERT_EVERY_MS).
   */
  async function canPay(settings: Settings, payer: Payer, expected: Price, what: Record<string, unknown>) {
    if (expected.rub === 0 || providers.some((p) => p.ready(settings, payer, expected))) return true;
    log.warn("order refused: no way to pay is configured", { userId: payer.userId, ...what });
    if (await shop.limits.firstIn("bot:alert:payments", NOT_READY_ALERT_EVERY_MS)) {
      settlement.alert("payments not configured alert", alertTexts.paymentsNotConfigured);
    }
    return false;
  }

  /** How the payer can pay a placed order: one option per provider open to them now. */
  async function optionsFor(order: Order, payer: Payer): Promise<PaymentOption[]> {
    // The settings as they are now: the owner may have just cleared AnyPay's, and a link signed with nothing is none.
    const now = await shop.settings.get();
    return providers
      .filter((p) => p.ready(now, payer, { rub: order.amountRub, stars: order.stars }))
      .map((p) => p.option(order, now))
      .filter((o): o is PaymentOption => o !== null);
  }

  /** The renewal of the buyer's key for `days`, against the price the buyer saw (`seenRub`). */
  async function quoteRenewal(userId: number, keyId: number, days: number, seenRub: number): Promise<RenewalQuote> {
    const found = await shop.orders.renewals.offers(userId, keyId);
    if (found.kind !== "ok") return found;
    const { key, offers } = found;
    const offer = offers.find((o) => o.days === days);
    if (!offer) return { kind: "duration_gone", key, offers };
    if (offer.rub !== seenRub) return { kind: "price_changed", key, offers, rub: offer.rub };
    return { kind: "ok", key, offer, offers };
  }

  /** A promo code typed on a renewal's confirmation: the price after it, or why it does not apply (a preview). */
  async function quoteRenewalPromo(input: {
    userId: number;
    keyId: number;
    days: number;
    seenRub: number;
    code: string;
  }): Promise<RenewalPromoQuote> {
    const q = await quoteRenewal(input.userId, input.keyId, input.days, input.seenRub);
    if (q.kind !== "ok") return q;
    const { key, offer } = q;
    const checked = await checkPromo(input.userId, key.productId, offer.days, input.code);
    if (checked.kind !== "ok") return { ...checked, key, offer };
    const price = discounted({ rub: offer.rub, stars: offer.stars }, checked.promo.discount);
    return { kind: "ok", key, offer, promo: checked.promo, price };
  }

  /**
   * Confirming a renewal: like a purchase — the ways to pay, the promo code, the order (shop.orders.renewals.place,
   * which checks the key is still the buyer's and not banned) and how to pay it — but nothing is reserved.
   */
  async function placeRenewal(input: {
    userId: number;
    keyId: number;
    days: DurationDays;
    seenRub: number;
    promoCode?: string | null | undefined;
  }): Promise<RenewalPlacement> {
    const { settings, payer } = await payerOf(input.userId);
    const found = await shop.orders.renewals.offers(input.userId, input.keyId);
    if (found.kind !== "ok") return found;
    const offer = found.offers.find((o) => o.days === input.days);
    if (!offer) return { kind: "duration_gone", key: found.key, offers: found.offers };
    let expected: Price = { rub: offer.rub, stars: offer.stars };
    if (input.promoCode) {
      const checked = await checkPromo(input.userId, found.key.productId, input.days, input.promoCode);
      if (checked.kind !== "ok") return checked;
      expected = discounted(expected, checked.promo.discount);
    }
    if (!(await canPay(settings, payer, expected, { keyId: input.keyId, days: input.days, renewal: true }))) {
      return { kind: "no_way_to_pay" };
    }
    const result = await shop.orders.renewals.place({
      userId: input.userId,
      keyId: input.keyId,
      days: input.days,
      expectedRub: input.seenRub,
      promoCode: input.promoCode ?? null,
    });
    if (!("order" in result)) return result;
    if (result.order.amountRub === 0) {
      const paid = await payByPromo(result.order);
      return paid.kind === "paid_by_promo" ? paid : { kind: "unavailable", key: result.key };
    }
    return { kind: "placed", order: result.order, key: result.key, options: await optionsFor(result.order, payer) };
  }

  /** An order its promo code makes free: paid with nothing, once, like any payment (its ledger row says so). */
  async function payByPromo(order: Order): Promise<Extract<Placement, { kind: "paid_by_promo" | "unavailable" }>> {
    const outcome = await settlement.settle({
      orderId: order.id,
      transactionId: `promo:${order.id}`,
      amount: "0",
      currency: "RUB",
      method: order.promoCode,
      test: false,
      source: "promo",
    });
    log.info("order paid by its promo code", { orderId: order.id, code: order.promoCode, outcome: outcome.kind });
    if (outcome.kind === "paid" || outcome.kind === "already" || outcome.kind === "paid_no_stock") {
      return { kind: "paid_by_promo", order: outcome.order };
    }
    // Nothing else can come of a fresh order's own transaction id; if it ever does, the buyer is not left hanging.
    log.error("an order paid by its promo code was not settled", { orderId: order.id, outcome: outcome.kind });
    return { kind: "unavailable" };
  }

  /** Whether an admin's test payment of this order can go ahead; the pressed button may be old, or forged. */
  async function testPaymentRefusal(userId: number, orderId: number): Promise<TestPaymentRefusal | null> {
    const { settings, payer } = await payerOf(userId);
    if (!payer.admin) return "not_admin";
    const order = await shop.orders.byId(orderId);
    if (!testPayments.ready(settings, payer, { rub: order?.amountRub ?? 0, stars: null })) return "off";
    if (!order || order.userId !== userId) return "not_theirs";
    return null;
  }

  /** An admin's «Оплатить (тест)»: completes their order as if it had been paid, through the same settlement. */
  function payTest(orderId: number, adminTelegramId: number) {
    return testPayments.receive({ orderId, adminTelegramId });
  }

  return {
    quote,
    quotePromo,
    place,
    quoteRenewal,
    quoteRenewalPromo,
    placeRenewal,
    testPaymentRefusal,
    payTest,
    /** AnyPay's notifications, for the HTTP endpoint that receives them (api/anypay.ts). */
    anypay,
    /**
     * Telegram Stars: the invoice for «Оплатить ⭐», Telegram's pre_checkout_query and successful_payment (the bot
     * hands them over), and giving a payment back (the order page).
     */
    stars: { invoice: stars.invoice, receive: stars.receive, refund: stars.refund },
    settle: settlement.settle,
    /** Resolves when the Telegram messages that follow payments have been sent (tests, graceful shutdown). */
    idle: settlement.idle,
  };
}

export type Checkout = ReturnType<typeof createCheckout>;
