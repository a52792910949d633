import { createHash } from "node:crypto";
import { daysLabel } from "../../lib/durations.ts";
import type { Order } from "../../shop/orders/orders.ts";

export const ANYPAY_SCI_URL = "https://anypay.io/merchant";

export type AnypayCredentials = { merchantId: string; secretKey: string };

const sha256hex = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

/**
 * What the buyer sees on AnyPay's page: product and duration, e.g. "Stalcraft 30 дней (заказ 17)", or for a renewal
 * "Продление: Stalcraft 30 дней (заказ 18)".
 */
export function orderDescription(order: Pick<Order, "id" | "productName" | "days" | "kind">): string {
  const what = `${order.productName} ${daysLabel(order.days)} (заказ ${order.id})`;
  return (order.kind === "renewal" ? `Продление: ${what}` : what).slice(0, 150);
}

/**
 * The SCI payment link (docs/operator.md#how-the-shop-talks-to-anypay): the form fields as a GET query, signed with
 * sha256(merchant_id:pay_id:amount:currency:desc:success_url:fail_url:secret_key), absent fields as empty strings.
 * pay_id is the order's numeric id; amount is whole roubles, exactly the string that was signed.
 */
export function paymentUrl(
  credentials: AnypayCredentials,
  order: Pick<Order, "id" | "productName" | "days" | "amountRub" | "kind">,
): string {
  const fields = {
    merchant_id: credentials.merchantId,
    pay_id: String(order.id),
    amount: String(order.amountRub),
    currency: "RUB",
    desc: orderDescription(order),
    success_url: "",
    fail_url: "",
  };
  const sign = sha256hex(
    [
      fields.merchant_id,
      fields.pay_id,
      fields.amount,
      fields.currency,
      fields.desc,
      fields.success_url,
      fields.fail_url,
      credentials.secretKey,
    ].join(":"),
  );
  const query = new URLSearchParams({
    merchant_id: fields.merchant_id,
    pay_id: fields.pay_id,
    amount: fields.amount,
    currency: fields.currency,
    desc: fields.desc,
    sign,
  });
  return `${ANYPAY_SCI_URL}?${query.toString()}`;
}

/** sha256(currency:amount:pay_id:merchant_id:status:secret_key) over the notification's values exactly as received. */
export function notificationSign(
  fields: { currency: string; amount: string; pay_id: string; merchant_id: string; status: string },
  secretKey: string,
): string {
  return sha256hex(
    [fields.currency, fields.amount, fields.pay_id, fields.merchant_id, fields.status, secretKey].join(":"),
  );
}
