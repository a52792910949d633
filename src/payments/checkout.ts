import type { Config } from "../config.ts";
import type { DurationDays } from "../lib/durations.ts";
import { log } from "../lib/log.ts";
import type { Shop } from "../shop/index.ts";
import type { Messenger } from "../shop/messenger.ts";
import type { Order } from "../shop/orders/orders.ts";
import type { CatalogueProduct, Offer } from "../shop/products/catalogue.ts";
import type { Settings } from "../shop/settings/settings.ts";
import { alertTexts } from "../shop/texts/admins.ts";
import { createAnypay } from "./anypay/provider.ts";
import type { Payer, PaymentOption } from "./provider.ts";
import { createSettlement } from "./settlement.ts";
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

/** What confirming a purchase came to. */
export type Placement =
  /** The order holds a key for the buyer (a new order, or their unpaid one for the same thing), and how to pay it. */
  | { kind: "placed"; order: Order; options: PaymentOption[] }
  /** No way to pay is open to this buyer: no order was placed, and the admins have been told. */
  | { kind: "no_way_to_pay" }
  | { kind: "price_changed"; rub: number }
  | { kind: "out_of_stock" }
  /** The product is archived or the duration is no longer for sale. */
  | { kind: "unavailable" };

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
  const testPayments = createTestPayments({ shop, settlement });
  /** In the order the payment screen offers them. */
  const providers = [anypay, testPayments];

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
   * Confirming a purchase: if a way to pay is open to the buyer, an order reserves a key for them (shop.orders.place),
   * and each open way says how to pay it. With none open no order is placed — holding a key for a payment that
   * cannot happen would only hide it from others — and the admins are told.
   */
  async function place(input: {
    userId: number;
    productId: number;
    days: DurationDays;
    /** The price the buyer saw; a different current price is reported instead of charging it silently. */
    seenRub: number;
  }): Promise<Placement> {
    const { settings, payer } = await payerOf(input.userId);
    const open = providers.filter((p) => p.ready(settings, payer));
    if (open.length === 0) {
      log.warn("purchase refused: AnyPay is not configured", {
        userId: input.userId,
        productId: input.productId,
        days: input.days,
      });
      if (await shop.limits.firstIn("bot:alert:payments", NOT_READY_ALERT_EVERY_MS)) {
        settlement.alert("payments not configured alert", alertTexts.paymentsNotConfigured);
      }
      return { kind: "no_way_to_pay" };
    }
    const result = await shop.orders.place({
      userId: input.userId,
      productId: input.productId,
      days: input.days,
      expectedRub: input.seenRub,
    });
    if (!("order" in result)) return result;
    // The settings as they are now: the owner may have just cleared AnyPay's, and a link signed with nothing is none.
    const now = await shop.settings.get();
    const options = open.map((p) => p.option(result.order, now)).filter((o): o is PaymentOption => o !== null);
    return { kind: "placed", order: result.order, options };
  }

  /** Whether an admin's test payment of this order can go ahead; the pressed button may be old, or forged. */
  async function testPaymentRefusal(userId: number, orderId: number): Promise<TestPaymentRefusal | null> {
    const { settings, payer } = await payerOf(userId);
    if (!payer.admin) return "not_admin";
    if (!testPayments.ready(settings, payer)) return "off";
    const order = await shop.orders.byId(orderId);
    if (!order || order.userId !== userId) return "not_theirs";
    return null;
  }

  /** An admin's «Оплатить (тест)»: completes their order as if it had been paid, through the same settlement. */
  function payTest(orderId: number, adminTelegramId: number) {
    return testPayments.receive({ orderId, adminTelegramId });
  }

  return {
    quote,
    place,
    testPaymentRefusal,
    payTest,
    /** AnyPay's notifications, for the HTTP endpoint that receives them (api/anypay.ts). */
    anypay,
    settle: settlement.settle,
    /** Resolves when the Telegram messages that follow payments have been sent (tests, graceful shutdown). */
    idle: settlement.idle,
  };
}

export type Checkout = ReturnType<typeof createCheckout>;
