/**
 * The second-edition checkout as a buyer meets it, with the shop wired as in production (runShop: HTTP server, the
 * real bot long-polling a fake Bot API, payments, the delivery job): a promo code typed on the confirmation, paid
 * through AnyPay at the discounted amount or covered in full, every refusal with what to do next.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createHash } from "node:crypto";
import type { RunningShop } from "../src/server.ts";
import type { PromoInput } from "../src/shop/promos/promos.ts";
import { buttonsOf, buyer } from "./helpers/bot.ts";
import type { FakeTelegram, RecordedCall, TgUser } from "./helpers/fake-telegram.ts";
import { BUILD_ZIP } from "./helpers/payments.ts";
import { type ProductionShop, startProductionShop } from "./helpers/running-shop.ts";

setDefaultTimeout(30_000);

const MERCHANT_ID = "70002";
const SECRET = "checkout-e2e-secret";
const ANYPAY_IP = "185.162.128.39";

let tg: FakeTelegram;
let running: RunningShop;
let production: ProductionShop;

const CONFIRM_TAIL =
  "После подтверждения вам предоставится страница для оплаты подписки, после успешной оплаты вы получите товар.";

const percent = (p: number, more: Partial<PromoInput> = {}): PromoInput => ({
  discount: { percent: p, rub: null },
  productId: null,
  days: null,
  maxUses: null,
  maxUsesPerBuyer: null,
  validUntil: null,
  enabled: true,
  ...more,
});

beforeAll(async () => {
  production = await startProductionShop({ anypayAllowedIps: [ANYPAY_IP] });
  ({ tg, running } = production);
  const { shop } = running;
  const product = await shop.products.create({ name: "Stalcraft", description: "" });
  await shop.products.setPrice(product.id, 30, 1999);
  await shop.products.setPrice(product.id, 7, 899);
  await shop.keys.generate(product.id, 30, 20);
  await shop.keys.generate(product.id, 7, 5);
  await shop.builds.store(product.id, BUILD_ZIP, "stalcraft-loader.zip");
  const other = await shop.products.create({ name: "Rust", description: "" });
  await shop.products.setPrice(other.id, 30, 999);
  await shop.keys.generate(other.id, 30, 2);
  await shop.settings.update({
    botToken: "123456789:AAH-test-token-0000000000000000000",
    botEnabled: true,
    anypayMerchantId: MERCHANT_ID,
    anypaySecretKey: SECRET,
  });
  await shop.promos.create("SPRING25", percent(25));
  await shop.promos.create("FREE", percent(100, { days: [7] }));
  await shop.promos.create("RUST-ONLY", percent(10, { productId: other.id }));
  await shop.promos.create("WEEK", percent(10, { productId: product.id, days: [7] }));
  await shop.promos.create("GONE", percent(10, { validUntil: "2020-01-01" }));
  const off = await shop.promos.create("OFF", percent(10));
  await shop.promos.setEnabled(off.id, false);
  await shop.promos.create("SOLO", percent(10, { maxUses: 1 }));
}, 30_000);

afterAll(async () => {
  await production.stop();
});

const say = (user: TgUser, text: string) => production.say(user, text);
const press = (user: TgUser, text: string, under: RecordedCall) => production.press(user, text, under);
const promoButton = (call: RecordedCall) => buttonsOf(call).find((b) => b.text.includes("промокод"))?.text;

/** Catalogue → product → duration: the confirmation. */
async function confirmation(user: TgUser, duration = "30 дней • 1999₽"): Promise<RecordedCall> {
  const catalogue = await say(user, "/start");
  const card = await press(user, "Stalcraft", catalogue);
  return await press(user, duration, card);
}

/** The confirmation, «Ввести промокод», the code: the bot's answer to the code. */
async function withCode(user: TgUser, code: string, duration?: string): Promise<RecordedCall> {
  const confirm = await confirmation(user, duration);
  const button = promoButton(confirm);
  expect(button).toBe("🎟 Ввести промокод");
  const prompt = await press(user, button!, confirm);
  expect(String(prompt.params.text)).toStartWith("Отправьте промокод одним сообщением");
  return await say(user, code);
}

async function notify(orderId: number, amount: string, transactionId: string) {
  const fields: Record<string, string> = {
    merchant_id: MERCHANT_ID,
    transaction_id: transactionId,
    pay_id: String(orderId),
    amount,
    currency: "RUB",
    status: "paid",
    test: "0",
  };
  // docs/operator.md: sha256hex(currency:amount:pay_id:merchant_id:status:secret_key), written here from the contract.
  fields.sign = createHash("sha256").update(`RUB:${amount}:${orderId}:${MERCHANT_ID}:paid:${SECRET}`).digest("hex");
  const res = await fetch(`${running.url}payments/anypay`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-forwarded-for": ANYPAY_IP },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: res.status, body: await res.text() };
}

const captionOf = (call: RecordedCall) => String(call.params.caption).replaceAll("\r", "");

describe("a promo code in the bot", () => {
  test("a buyer types a code and pays the discounted amount through AnyPay: the list price is refused, the key comes once", async () => {
    const alice = buyer(610_000_001, "Alice");
    const answer = await withCode(alice, "spring25");
    expect(answer.method).toBe("sendMessage");
    expect(answer.params.text).toBe(
      `Подтвердите покупку:\nStalcraft 30 дней • 1500₽ вместо 1999₽ (промокод SPRING25, −25%).\n${CONFIRM_TAIL}`,
    );
    expect(buttonsOf(answer).map((b) => b.text)).toEqual(["Подтвердить", "🎟 Другой промокод", "« Назад"]);

    const payment = await press(alice, "Подтвердить", answer);
    const [order] = await running.shop.deps.sql<{ id: string; amount_rub: number; promo_code: string }[]>`
      select id, amount_rub, promo_code from orders where user_id = ${alice.id}`;
    expect(order).toMatchObject({ amount_rub: 1500, promo_code: "SPRING25" });
    expect(String(payment.params.text)).toStartWith(
      `Заказ №${order!.id}: Stalcraft 30 дней • 1500₽ вместо 1999₽ (промокод SPRING25).`,
    );
    const link = buttonsOf(payment).find((b) => b.text === "Оплатить 1500₽")?.url;
    const q = new URL(link!).searchParams;
    expect(q.get("amount")).toBe("1500");
    expect(q.get("sign")).toBe(
      createHash("sha256")
        .update(`${MERCHANT_ID}:${order!.id}:1500:RUB:${q.get("desc")}:::${SECRET}`, "utf8")
        .digest("hex"),
    );

    // A notification for the list price is not a payment of this order: nothing is delivered.
    expect(await notify(Number(order!.id), "1999.00", "e2e-promo-1")).toEqual({
      status: 400,
      body: `Rejected: amount 1999.00 is not the order's 1500`,
    });
    expect(await notify(Number(order!.id), "1500.00", "e2e-promo-2")).toEqual({ status: 200, body: "OK" });
    // AnyPay retries: still one key.
    expect(await notify(Number(order!.id), "1500.00", "e2e-promo-2")).toEqual({ status: 200, body: "OK" });
    const delivery = await tg.waitFor(() => tg.callsOf("sendDocument", alice.id)[0], 8_000);
    expect(captionOf(delivery)).toMatch(/^Ключ: MPH-\S+\nТовар: Stalcraft 30 дней\nСпасибо за покупку!$/);
    await Bun.sleep(300);
    expect(tg.callsOf("sendDocument", alice.id)).toHaveLength(1);
    const [paid] = await running.shop.deps.sql`select status, provider, paid_rub from orders where id = ${order!.id}`;
    expect(paid).toMatchObject({ provider: "anypay", paid_rub: 1500 });
  });

  test("a 100 % code completes the order without a payment page: the key comes through the same delivery", async () => {
    const bob = buyer(610_000_002, "Bob");
    const answer = await withCode(bob, "free", "7 дней • 899₽");
    expect(answer.params.text).toBe(
      "Подтвердите покупку:\nStalcraft 7 дней • 0₽ вместо 899₽ (промокод FREE, −100%).\n" +
        "Промокод покрывает всю стоимость: после подтверждения вы сразу получите товар.",
    );
    const from = tg.calls.length;
    await press(bob, "Подтвердить", answer);
    // The key's delivery is as quick as the screen's edit: on a loaded machine it can come first, so wait for the text.
    const done = await tg.waitFor(
      (calls) =>
        calls
          .slice(from)
          .find((c) => c.method !== "sendDocument" && Number(c.params.chat_id) === bob.id && "text" in c.params),
      8_000,
    );
    const [order] = await running.shop.deps.sql<{ id: string }[]>`select id from orders where user_id = ${bob.id}`;
    expect(done.params.text).toBe(
      `Промокод FREE покрыл всю стоимость заказа №${order!.id}. Ключ придёт в этот чат через несколько секунд.`,
    );
    expect(buttonsOf(done).some((b) => b.url)).toBe(false);
    const delivery = await tg.waitFor(() => tg.callsOf("sendDocument", bob.id)[0], 8_000);
    expect(captionOf(delivery)).toMatch(/^Ключ: MPH-\S+\nТовар: Stalcraft 7 дней\nСпасибо за покупку!$/);
    const [paid] = await running.shop.deps.sql`
      select provider, paid_rub, amount_rub, transaction_id from orders where id = ${order!.id}`;
    expect(paid).toMatchObject({ provider: "promo", paid_rub: 0, amount_rub: 0, transaction_id: `promo:${order!.id}` });
  });

  test("every code that does not apply says why and what to do next, and the purchase goes on at its price", async () => {
    const carol = buyer(610_000_003, "Carol");
    // SOLO's only use is taken by someone else first.
    const dave = buyer(610_000_004, "Dave");
    expect(String((await withCode(dave, "SOLO")).params.text)).toContain("1800₽ вместо 1999₽");
    await press(dave, "Подтвердить", await withCode(dave, "SOLO"));

    const refusals: [string, string][] = [
      [
        "nope-nope",
        "Промокода «NOPE-NOPE» нет. Проверьте, как он написан, и нажмите «🎟 Ввести промокод» ещё раз — или подтвердите покупку без него.",
      ],
      [
        "gone",
        "Срок действия промокода GONE закончился. Подтвердите покупку по обычной цене или введите другой промокод.",
      ],
      ["off", "Промокод OFF больше не действует. Подтвердите покупку по обычной цене или введите другой промокод."],
      [
        "rust-only",
        "Промокод RUST-ONLY действует только для «Rust». Выберите этот товар в каталоге или подтвердите покупку без промокода.",
      ],
      [
        "week",
        "Промокод WEEK действует только для «Stalcraft» на 7 дней. Вернитесь назад и выберите этот срок — или подтвердите покупку без промокода.",
      ],
      ["solo", "Промокод SOLO уже израсходован. Подтвердите покупку по обычной цене или введите другой промокод."],
    ];
    // Each refusal comes with the confirmation at the full price, whose «Ввести промокод» takes the next try.
    let last = await confirmation(carol);
    for (const [code, why] of refusals) {
      await press(carol, promoButton(last)!, last);
      last = await say(carol, code);
      expect(last.params.text).toBe(`${why}\n\nПодтвердите покупку:\nStalcraft 30 дней • 1999₽.\n${CONFIRM_TAIL}`);
      expect(promoButton(last)).toBe("🎟 Ввести промокод");
    }
    const payment = await press(carol, "Подтвердить", last);
    expect(buttonsOf(payment).find((b) => b.url)?.text).toBe("Оплатить 1999₽");
    const orders = await running.shop.deps.sql`select amount_rub, promo_code from orders where user_id = ${carol.id}`;
    expect([...orders]).toEqual([{ amount_rub: 1999, promo_code: null }]);
  });

  test("«Отмена» on the prompt goes back to the confirmation, and a command meanwhile is a command", async () => {
    const erin = buyer(610_000_005, "Erin");
    const confirm = await confirmation(erin);
    const prompt = await press(erin, "🎟 Ввести промокод", confirm);
    const back = await press(erin, "« Отмена", prompt);
    expect(back.params.text).toBe(`Подтвердите покупку:\nStalcraft 30 дней • 1999₽.\n${CONFIRM_TAIL}`);
    // The code is no longer awaited: a word is just a word (the catalogue), not a code.
    expect(String((await say(erin, "SPRING25")).params.text)).toBe("Выберите товар:");

    const again = await press(erin, "🎟 Ввести промокод", await confirmation(erin));
    expect(String(again.params.text)).toStartWith("Отправьте промокод");
    expect(String((await say(erin, "/start")).params.text)).toBe("Выберите товар:");
    expect(String((await say(erin, "SPRING25")).params.text)).toBe("Выберите товар:");
  });
});
