import type { Order } from "../shop/orders/orders.ts";
import type { Price } from "../shop/promos/discount.ts";
import type { Settings } from "../shop/settings/settings.ts";

/** Who is about to pay: what decides which ways to pay are open to them. */
export type Payer = { userId: number; admin: boolean };

/** One way to pay an order, as the payment screen offers it. */
export type PaymentOption =
  /** AnyPay's payment page, signed for this order and its amount. */
  | { provider: "anypay"; url: string; rub: number }
  /** An invoice in Telegram Stars, sent into the chat when the buyer presses the button. */
  | { provider: "telegram_stars"; orderId: number; stars: number }
  /** An admin's test payment: a button that pays their own order without money, through the same settlement. */
  | { provider: "test"; orderId: number };

export type ProviderName = PaymentOption["provider"];

/**
 * A way to be paid. The checkout asks each provider whether it is open to a payer and how that payer pays an order
 * with it. A provider recognises and checks its own notifications — whatever form they come in — and hands a
 * genuine payment to the checkout's settlement, which is the same for all. AnyPay (anypay/provider.ts) and the
 * admins' test payments (test-payments.ts) and Telegram Stars (telegram-stars.ts) are the providers; another is one
 * more file like them, listed in checkout.ts.
 */
export interface PaymentProvider<Notice, Answer> {
  readonly name: ProviderName;
  /**
   * Whether this payer can pay this price with it now (its settings are filled in, it is switched on, the price is
   * one it takes). A price of 0 roubles needs no provider: a promo code pays it.
   */
  ready(settings: Settings, payer: Payer, price: Price): boolean;
  /** How an order is paid with it; null when it cannot be any more (its settings went away meanwhile). */
  option(order: Order, settings: Settings): PaymentOption | null;
  /** A notification from the provider, recognised and checked; a genuine payment is settled, exactly once. */
  receive(notice: Notice): Promise<Answer>;
}
