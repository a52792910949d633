import { timingSafeEqual } from "node:crypto";
import * as v from "valibot";
import { notificationSign } from "./link.ts";

/**
 * AnyPay's payment notification (docs/operator.md#how-the-shop-talks-to-anypay), as fields. The signed fields must be
 * exactly well-formed; the ones kept only for the record (profit, email, method) are accepted as any short string, so a
 * format change on AnyPay's side in a field we do not rely on never turns a real payment away.
 */
const digits = (max: number, label: string) =>
  v.pipe(v.string(`${label} must be a string`), v.regex(new RegExp(`^\\d{1,${max}}$`), `${label} must be digits`));

const optionalText = (max: number, label: string) =>
  v.optional(v.pipe(v.string(`${label} must be a string`), v.maxLength(max, `${label} is too long`)));

export const NotificationSchema = v.object({
  merchant_id: digits(20, "merchant_id"),
  transaction_id: v.pipe(
    v.string("transaction_id must be a string"),
    v.regex(/^[\x21-\x7e]{1,128}$/, "transaction_id must be 1–128 printable characters"),
  ),
  pay_id: digits(15, "pay_id"),
  amount: v.pipe(
    v.string("amount must be a string"),
    v.regex(/^\d{1,9}(\.\d{1,2})?$/, "amount must be a decimal like 299 or 299.00"),
  ),
  currency: v.pipe(v.string("currency must be a string"), v.regex(/^[A-Z]{3}$/, "currency must be 3 capital letters")),
  status: v.pipe(v.string("status must be a string"), v.regex(/^[a-z_]{1,32}$/i, "status must be a word")),
  test: v.optional(v.picklist(["0", "1"], "test must be 0 or 1"), "0"),
  sign: v.pipe(v.string("sign must be a string"), v.regex(/^[0-9a-fA-F]{64}$/, "sign must be 64 hex digits")),
  profit: optionalText(32, "profit"),
  email: optionalText(254, "email"),
  method: optionalText(64, "method"),
});

export type Notification = v.InferOutput<typeof NotificationSchema>;

/** Parses raw fields; on failure, one line naming the first bad field (for the log and the 400 answer). */
export function parseNotification(
  raw: Record<string, unknown>,
): { ok: true; value: Notification } | { ok: false; problem: string } {
  const result = v.safeParse(NotificationSchema, raw);
  if (result.success) return { ok: true, value: result.output };
  const issue = result.issues[0];
  const field = issue.path?.[0]?.key;
  const missing = issue.input === undefined && field !== undefined;
  return { ok: false, problem: missing ? `${String(field)} is missing` : issue.message };
}

/** The notification's signature, compared in constant time so its bytes cannot be guessed one by one. */
export function signatureMatches(n: Notification, secretKey: string): boolean {
  const expected = Buffer.from(notificationSign(n, secretKey), "hex");
  const received = Buffer.from(n.sign.toLowerCase(), "hex");
  return expected.length === received.length && timingSafeEqual(expected, received);
}

/** "299", "299.0" and "299.00" are the same 29 900 kopecks; compared as integers, never as floats. */
export function amountInKopecks(amount: string): number {
  const [whole, fraction = ""] = amount.split(".");
  return Number(whole) * 100 + Number(fraction.padEnd(2, "0"));
}
