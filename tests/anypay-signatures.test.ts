/**
 * Both AnyPay signatures against fixed vectors, computed outside the shop (`printf … | sha256sum`) from the formulas of
 * docs/operator.md#how-the-shop-talks-to-anypay: a field out of order or a wrong separator changes the hash and fails
 * here.
 */
import { expect, test } from "bun:test";
import { notificationSign, paymentUrl } from "../src/payments/anypay/link.ts";

test("the payment link is signed as sha256(merchant_id:pay_id:amount:currency:desc:success_url:fail_url:secret)", () => {
  const url = new URL(
    paymentUrl(
      { merchantId: "10001", secretKey: "s3cret" },
      { id: 42, kind: "purchase", productName: "Stalcraft", days: 30, amountRub: 1999 },
    ),
  );
  expect(url.origin + url.pathname).toBe("https://anypay.io/merchant");
  expect(Object.fromEntries(url.searchParams)).toEqual({
    merchant_id: "10001",
    pay_id: "42",
    amount: "1999",
    currency: "RUB",
    desc: "Stalcraft 30 дней (заказ 42)",
    // printf '%s' '10001:42:1999:RUB:Stalcraft 30 дней (заказ 42):::s3cret' | sha256sum
    sign: "65fa51b66b037eeadcfd992c97afeef0fc4e80169894a2e3f65d657dd1c0401c",
  });
});

test("a notification is checked against sha256(currency:amount:pay_id:merchant_id:status:secret) as received", () => {
  const fields = { currency: "RUB", amount: "1999.00", pay_id: "42", merchant_id: "10001", status: "paid" };
  // printf '%s' 'RUB:1999.00:42:10001:paid:s3cret' | sha256sum
  expect(notificationSign(fields, "s3cret")).toBe("9ce78b4f9e80c596645425eb852c8488389c83010c51f466bfd27f9cee9f4e43");
  // The values exactly as received: "1999" is another string, so another signature.
  expect(notificationSign({ ...fields, amount: "1999" }, "s3cret")).not.toBe(notificationSign(fields, "s3cret"));
});
