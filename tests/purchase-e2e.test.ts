/**
 * The whole purchase as production wires it (runShop: HTTP server, bot runtime, payments, delivery job), with only
 * Telegram and AnyPay played by local servers: a buyer walks the bot, pays through a signed AnyPay notification and
 * receives the zip with the key, which then opens the loader through the auth API. An admin pays in test mode.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import type { RunningShop } from "../src/server.ts";
import { buttonData, buttonsOf, buyer, messageIdOf, waitUntil } from "./helpers/bot.ts";
import { type FakeTelegram, type RecordedCall, TEST_TOKEN, type TgUser } from "./helpers/fake-telegram.ts";
import { BUILD_ZIP } from "./helpers/payments.ts";
import { type ProductionShop, startProductionShop } from "./helpers/running-shop.ts";

const MERCHANT_ID = "70001";
const SECRET = "e2e-anypay-secret";
const ADMIN = buyer(555_000_001, "Админ");
const alice = buyer(555_000_002, "Alice");

let tg: FakeTelegram;
let running: RunningShop;
let production: ProductionShop;

beforeAll(async () => {
  production = await startProductionShop({ anypayAllowedIps: ["185.162.128.38"] });
  ({ tg, running } = production);
  const { shop } = running;
  await shop.admins.add(ADMIN.id, "owner");
  const product = await shop.products.create({ name: "Stalcraft", description: "Лоадер для Stalcraft." });
  await shop.products.setPrice(product.id, 30, 1999);
  await shop.products.setPrice(product.id, 7, 899);
  await shop.keys.generate(product.id, 30, 2);
  await shop.keys.generate(product.id, 7, 1);
  await shop.builds.store(product.id, BUILD_ZIP, "stalcraft-loader.zip");
  // The state after installation is "off"; the owner turns the shop on from the panel.
  await shop.settings.update({
    botToken: TEST_TOKEN,
    botEnabled: true,
    anypayMerchantId: MERCHANT_ID,
    anypaySecretKey: SECRET,
    testPayments: true,
  });
}, 20_000);

afterAll(async () => {
  await production.stop();
});

const say = (user: TgUser, text: string) => production.say(user, text);
const press = (user: TgUser, text: string, under: RecordedCall) => production.press(user, text, under);

async function buyUpToPayment(user: TgUser, duration: string): Promise<RecordedCall> {
  const catalogue = await say(user, "/start");
  const card = await press(user, "Stalcraft", catalogue);
  const confirm = await press(user, duration, card);
  expect(confirm.params.text).toBe(
    `Подтвердите покупку:\nStalcraft ${duration.split(" • ")[0]} • ${duration.split(" • ")[1]}.\n` +
      "После подтверждения вам предоставится страница для оплаты подписки, после успешной оплаты вы получите товар.",
  );
  return await press(user, "Подтвердить", confirm);
}

test("a buyer pays through AnyPay and receives the zip with the key, which then opens the loader", async () => {
  const payment = await buyUpToPayment(alice, "30 дней • 1999₽");
  const link = buttonsOf(payment).find((b) => b.url)?.url;
  expect(link).toStartWith("https://anypay.io/merchant?");
  const q = new URL(link!).searchParams;
  expect(q.get("merchant_id")).toBe(MERCHANT_ID);
  expect(q.get("amount")).toBe("1999");
  expect(q.get("currency")).toBe("RUB");
  const orderId = Number(q.get("pay_id"));
  // SPEC §7, computed here from the fields AnyPay will see: sha256hex(merchant_id:pay_id:amount:currency:desc:
  // success_url:fail_url:secret_key), the two URLs absent and so empty.
  expect(q.get("desc")).toBe(`Stalcraft 30 дней (заказ ${orderId})`);
  expect(q.get("sign")).toBe(
    createHash("sha256")
      .update(`${MERCHANT_ID}:${orderId}:1999:RUB:${q.get("desc")}:::${SECRET}`, "utf8")
      .digest("hex"),
  );
  const [order] = await running.shop.deps.sql`select status, amount_rub, user_id from orders where id = ${orderId}`;
  expect(order).toMatchObject({ status: "pending", amount_rub: 1999 });
  expect(Number(order!.user_id)).toBe(alice.id);

  // AnyPay calls back (through Caddy in production: the proxy passes the client address).
  const fields: Record<string, string> = {
    merchant_id: MERCHANT_ID,
    transaction_id: "9000001",
    pay_id: String(orderId),
    amount: "1999.00",
    currency: "RUB",
    profit: "1899.05",
    email: "alice@example.com",
    method: "card",
    status: "paid",
    test: "0",
  };
  // SPEC §7: sha256hex(currency:amount:pay_id:merchant_id:status:secret_key), as AnyPay computes it.
  fields.sign = createHash("sha256").update(`RUB:1999.00:${orderId}:${MERCHANT_ID}:paid:${SECRET}`).digest("hex");
  const res = await fetch(`${running.url}payments/anypay`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-forwarded-for": "185.162.128.38" },
    body: new URLSearchParams(fields).toString(),
  });
  expect(await res.text()).toBe("OK");

  const delivery = await tg.waitFor(() => tg.callsOf("sendDocument", alice.id)[0], 8_000);
  // Multipart encodes "\n" as "\r\n"; Telegram drops every "\r", so compare what the buyer sees.
  const caption = String(delivery.params.caption).replaceAll("\r", "");
  const key = /^Ключ: (MPH-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5})\n/.exec(caption)?.[1];
  expect(key).toBeDefined();
  expect(caption).toBe(`Ключ: ${key}\nТовар: Stalcraft 30 дней\nСпасибо за покупку!`);
  expect(delivery.files.document?.name).toBe("stalcraft-loader.zip");
  expect(delivery.files.document?.size).toBe(BUILD_ZIP.length);

  const auth = await fetch(`${running.url}api/Stalcraft/auth`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key, uuid: "ALICE-PC" }),
  });
  expect(auth.status).toBe(200);
  expect(await auth.json()).toMatchObject({ success: true, message: "OK", days: 29, hours: 23 });

  // «Мои покупки» shows it.
  const catalogue = await say(alice, "/start");
  const mine = await press(alice, "Мои покупки", catalogue);
  expect(String(mine.params.text)).toContain(key!);
}, 30_000);

test("an admin with test payments on completes an order through «Оплатить (тест)» and gets the key", async () => {
  const payment = await buyUpToPayment(ADMIN, "7 дней • 899₽");
  expect(buttonsOf(payment).map((b) => b.text)).toContain("Оплатить (тест)");
  const from = tg.calls.length;
  tg.pressButton(TEST_TOKEN, ADMIN, buttonData(payment, "Оплатить (тест)"), {
    message_id: messageIdOf(payment),
    text: String(payment.params.text ?? ""),
  });
  const delivery = await tg.waitFor(
    (calls) => calls.slice(from).find((c) => c.method === "sendDocument" && Number(c.params.chat_id) === ADMIN.id),
    8_000,
  );
  expect(String(delivery.params.caption)).toMatch(
    /^Ключ: MPH-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}\nТовар: Stalcraft 7 дней\nСпасибо за покупку!$/,
  );
  // The zip was uploaded once (for Alice); this delivery reuses Telegram's file_id.
  expect(delivery.files.document).toBeUndefined();
  expect(String(delivery.params.document)).toStartWith("doc_");
  // The order turns "delivered" right after Telegram accepted the message.
  const adminOrder = async () =>
    (
      await running.shop.deps.sql`
        select status, test from orders where user_id = ${ADMIN.id} order by id desc limit 1`
    )[0];
  await waitUntil(async () => (await adminOrder())?.status === "delivered", "the order to be delivered", 5_000, 20);
  expect(await adminOrder()).toMatchObject({ status: "delivered", test: true });
}, 30_000);

test("a buyer who is not an admin never sees the test payment button", async () => {
  const bob = buyer(555_000_003, "Bob");
  const payment = await buyUpToPayment(bob, "30 дней • 1999₽");
  expect(buttonsOf(payment).map((b) => b.text)).not.toContain("Оплатить (тест)");
}, 30_000);
