import { createHash } from "node:crypto";

/** An AnyPay address from the default allow-list (docs/operator.md#anypay). */
export const ANYPAY_IP = "185.162.128.38";

export type NotificationFields = Record<string, string>;

/**
 * Plays AnyPay's part: builds notifications signed the way AnyPay signs them and sends them over real HTTP to a
 * shop listening on loopback. The shop believes X-Forwarded-For from 127.0.0.1 (its trusted proxy, like Caddy), so
 * `from` sets the source address the shop sees.
 */
export class AnypayNotifier {
  private nextTransaction = 1_000_000 + Math.floor(Math.random() * 1_000_000);

  constructor(
    /** The notification URL, e.g. http://127.0.0.1:PORT/Morpheus%20Private/payments/anypay */
    readonly url: string,
    readonly merchantId: string,
    readonly secretKey: string,
  ) {}

  /** A correctly signed "paid" notification for an order; overrides are applied before signing. */
  paid(order: { id: number; amountRub: number }, overrides: NotificationFields = {}): NotificationFields {
    const fields: NotificationFields = {
      merchant_id: this.merchantId,
      transaction_id: String(this.nextTransaction++),
      pay_id: String(order.id),
      amount: `${order.amountRub}.00`,
      currency: "RUB",
      profit: (order.amountRub * 0.95).toFixed(2),
      email: "buyer@example.com",
      method: "card",
      status: "paid",
      test: "0",
      ...overrides,
    };
    return { ...fields, sign: this.sign(fields) };
  }

  /**
   * AnyPay's notification signature, written here from AnyPay's contract
   * (docs/operator.md#how-the-shop-talks-to-anypay) and not taken from the shop's code, so a wrong formula in the shop
   * fails the tests: sha256hex(currency:amount:pay_id:merchant_id:status:secret_key).
   */
  sign(fields: NotificationFields, secretKey = this.secretKey): string {
    const { currency = "", amount = "", pay_id = "", merchant_id = "", status = "" } = fields;
    return createHash("sha256")
      .update([currency, amount, pay_id, merchant_id, status, secretKey].join(":"), "utf8")
      .digest("hex");
  }

  /** Sends a notification as AnyPay does: a form POST (default) or a GET with the fields in the query. */
  async send(
    fields: NotificationFields,
    options: { method?: "GET" | "POST"; from?: string | null } = {},
  ): Promise<{ status: number; body: string; contentType: string | null }> {
    const from = options.from === undefined ? ANYPAY_IP : options.from;
    const headers: Record<string, string> = from ? { "x-forwarded-for": from } : {};
    const query = new URLSearchParams(fields).toString();
    const res =
      options.method === "GET"
        ? await fetch(`${this.url}?${query}`, { headers })
        : await fetch(this.url, {
            method: "POST",
            headers: { ...headers, "content-type": "application/x-www-form-urlencoded" },
            body: query,
          });
    return { status: res.status, body: await res.text(), contentType: res.headers.get("content-type") };
  }

  /** Sends a raw body with any content type (for malformed input). */
  async sendRaw(body: string, contentType: string, from: string = ANYPAY_IP) {
    const res = await fetch(this.url, {
      method: "POST",
      headers: { "x-forwarded-for": from, "content-type": contentType },
      body,
    });
    return { status: res.status, body: await res.text() };
  }
}
