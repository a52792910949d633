import type { Order } from "../shop/orders/orders.ts";
import type { SettingsService } from "../shop/settings/settings.ts";
import { paymentUrl } from "./anypay.ts";

/** What the bot needs from payments: a link to pay an order, and (admins, test mode) paying it without money. */
export interface PaymentsPort {
  /** The AnyPay link for this order, or null when the merchant id or secret is not configured yet. */
  checkoutUrl(order: Order): Promise<string | null>;
  /** Completes the order through the same path as a real paid notification; only for admins with test mode on. */
  payTest(orderId: number, adminTelegramId: number): Promise<{ ok: true } | { ok: false; reason: string }>;
}

/** The checkout half of the port: the signed link, with the AnyPay settings as they are now. */
export async function checkoutUrl(settings: SettingsService, order: Order): Promise<string | null> {
  const s = await settings.get();
  if (!s.anypayMerchantId || !s.anypaySecretKey) return null;
  return paymentUrl({ merchantId: s.anypayMerchantId, secretKey: s.anypaySecretKey }, order);
}
