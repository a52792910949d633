/**
 * Paying in Telegram Stars as a buyer meets it, with the shop wired as in production (runShop: the real bot
 * long-polling a fake Bot API that answers sendInvoice, answerPreCheckoutQuery and refundStarPayment and delivers
 * pre_checkout_query and successful_payment, the delivery job, the panel): with and without a promo code, a payment
 * Telegram repeats delivers once, every refused pre-checkout says what to do, and Stars that bought nothing are given
 * back from the order page.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createTelegramMessenger } from "../src/bot/messenger.ts";
import { createCheckout } from "../src/payments/checkout.ts";
import type { RunningShop } from "../src/server.ts";
import { paidNoStockText, starsRefusal } from "../src/shop/texts/buyers.ts";
import { buttonsOf, buyer } from "./helpers/bot.ts";
import { type FakeTelegram, type RecordedCall, TEST_TOKEN, type TgUser } from "./helpers/fake-telegram.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { type ProductionShop, startProductionShop } from "./helpers/running-shop.ts";

setDefaultTimeout(30_000);

let tg: FakeTelegram;
let running: RunningShop;
let production: ProductionShop;
let productId: number;
let panel: PanelClient;

const ADMIN_ID = 620_000_999;

beforeAll(async () => {
  production = await startProductionShop();
  ({ tg, running } = production);
  const { shop } = running;
  const product = await shop.products.create({ name: "Stalcraft", description: "" });
  productId = product.id;
  await shop.products.setPrice(product.id, 30, 1999);
  await shop.products.setStarsPrice(product.id, 30, 150);
  await shop.products.setPrice(product.id, 7, 899);
  await shop.keys.generate(product.id, 30, 20);
  await shop.keys.generate(product.id, 7, 5);
  await shop.settings.update({
    botToken: TEST_TOKEN,
    botEnabled: true,
    anypayMerchantId: "70003",
    anypaySecretKey: "stars-e2e-secret",
    starsEnabled: true,
  });
  await shop.promos.create("STAR20", {
    discount: { percent: 20, rub: null },
    productId: null,
    days: null,
    maxUses: null,
    maxUsesPerBuyer: null,
    validUntil: null,
    enabled: true,
  });
  await shop.users.touch({ id: ADMIN_ID, firstName: "Admin" });
  await shop.admins.add(ADMIN_ID);
  const { password } = await shop.accounts.reset("admin");
  const base = running.url.replace(/\/$/, "");
  panel = new PanelClient({
    config: running.shop.deps.config,
    request: (path, init) => fetch(`${base}${path}`, { ...init, redirect: "manual" }),
  });
  expect((await panel.login("admin", password)).status).toBe(303);
}, 30_000);

afterAll(async () => {
  await production.stop();
});

const say = (user: TgUser, text: string) => production.say(user, text);
const press = (user: TgUser, text: string, under: RecordedCall) => production.press(user, text, under);
const sql = () => running.shop.deps.sql;

type OrderRow = {
  id: string;
  status: string;
  stars: number | null;
  provider: string | null;
  paid_stars: number | null;
  paid_rub: number | null;
  transaction_id: string | null;
};

async function orderOf(user: TgUser): Promise<OrderRow> {
  const [row] = await sql()<OrderRow[]>`
    select id, status, stars, provider, paid_stars, paid_rub, transaction_id from orders
    where user_id = ${user.id} order by id desc limit 1`;
  return row!;
}

/** Catalogue → product → duration → «Подтвердить»: the payment step. */
async function paymentStep(user: TgUser, duration = "30 дней • 1999₽"): Promise<RecordedCall> {
  const catalogue = await say(user, "/start");
  const card = await press(user, "Stalcraft", catalogue);
  const confirm = await press(user, duration, card);
  return await press(user, "Подтвердить", confirm);
}

/** Presses «Оплатить N ⭐» and resolves with the invoice the bot sent. */
async function askInvoice(user: TgUser, payment: RecordedCall): Promise<RecordedCall> {
  const star = buttonsOf(payment).find((b) => b.text.includes("⭐"));
  expect(star).toBeDefined();
  const from = tg.calls.length;
  tg.pressButton(TEST_TOKEN, user, star!.callback_data!, { message_id: 1 });
  return await tg.waitFor((calls) => calls.slice(from).find((c) => c.method === "sendInvoice"));
}

/** The key messages (the delivery) the buyer got. */
const keysSentTo = (user: TgUser) =>
  tg.calls.filter(
    (c) =>
      (c.method === "sendMessage" || c.method === "sendDocument") &&
      Number(c.params.chat_id) === user.id &&
      /^Ключ: MPH-/.test(String(c.params.text ?? c.params.caption ?? "")),
  );

describe("paying in Telegram Stars in the bot", () => {
  test("the payment step offers ⭐ beside AnyPay; the invoice is in XTR for the order; paid once, the key comes once", async () => {
    const alice = buyer(620_000_001, "Alice");
    const payment = await paymentStep(alice);
    const order = await orderOf(alice);
    expect(order).toMatchObject({ status: "pending", stars: 150 });
    expect(String(payment.params.text)).toStartWith(`Заказ №${order.id}: Stalcraft 30 дней • 1999₽ или 150 ⭐.`);
    expect(buttonsOf(payment).map((b) => b.text)).toEqual(["Оплатить 1999₽", "Оплатить 150 ⭐", "« В каталог"]);

    const invoice = await askInvoice(alice, payment);
    expect(invoice.params).toMatchObject({
      chat_id: alice.id,
      title: "Stalcraft 30 дней",
      payload: order.id,
      currency: "XTR",
      provider_token: "",
      prices: [{ label: `Заказ №${order.id}`, amount: 150 }],
    });

    const { preCheckout, chargeId } = await tg.payInvoice(TEST_TOKEN, alice, invoice);
    expect(preCheckout.params.ok).toBe(true);
    await tg.waitFor(() => keysSentTo(alice).length > 0, 8_000);
    const paid = await orderOf(alice);
    expect(paid).toMatchObject({ provider: "telegram_stars", paid_stars: 150, paid_rub: 0, transaction_id: chargeId });
    const ledger = await sql()`
      select transaction_id, amount, currency, source, outcome from payments where order_id = ${order.id}`;
    expect([...ledger]).toEqual([
      { transaction_id: chargeId, amount: "150.00", currency: "XTR", source: "telegram_stars", outcome: "applied" },
    ]);

    // The key's timeline names the payment as the buyer made it.
    const [sold] = await sql()<{ id: string }[]>`select id from keys where order_id = ${order.id}`;
    expect((await panel.page(`/keys/${sold!.id}`)).html).toContain(
      `Оплата заказа #${order.id}: 150 ⭐ (Telegram Stars)`,
    );

    // Telegram repeats the update (twice): nothing more happens.
    tg.successfulPayment(TEST_TOKEN, alice, { payload: order.id, total_amount: 150, chargeId: chargeId! });
    tg.successfulPayment(TEST_TOKEN, alice, { payload: order.id, total_amount: 150, chargeId: chargeId! });
    await say(alice, "/purchases");
    await Bun.sleep(300);
    expect(keysSentTo(alice)).toHaveLength(1);
    expect(await sql()`select 1 from payments where order_id = ${order.id}`).toHaveLength(1);
    expect(await sql()`select 1 from deliveries where order_id = ${order.id}`).toHaveLength(1);
    // A pre-checkout for the paid order is refused with what to do.
    const again = await tg.preCheckout(TEST_TOKEN, alice, { payload: order.id, total_amount: 150 });
    expect(again.params).toMatchObject({ ok: false, error_message: starsRefusal.alreadyPaid });
  });

  test("with a promo code the invoice asks the discounted Stars, and that is what the order records as paid", async () => {
    const bob = buyer(620_000_002, "Bob");
    const catalogue = await say(bob, "/start");
    const card = await press(bob, "Stalcraft", catalogue);
    const confirm = await press(bob, "30 дней • 1999₽", card);
    await press(bob, "🎟 Ввести промокод", confirm);
    const withCode = await say(bob, "star20");
    const payment = await press(bob, "Подтвердить", withCode);
    const order = await orderOf(bob);
    expect(order.stars).toBe(120);
    expect(buttonsOf(payment).map((b) => b.text)).toContain("Оплатить 120 ⭐");
    // The list price stands next to the roubles it was cut from, not after the Stars (as if 120 ⭐ replaced it).
    expect(String(payment.params.text)).toStartWith(
      `Заказ №${order.id}: Stalcraft 30 дней • 1600₽ вместо 1999₽ (промокод STAR20) или 120 ⭐.`,
    );

    const invoice = await askInvoice(bob, payment);
    expect(invoice.params.prices).toEqual([{ label: `Заказ №${order.id}`, amount: 120 }]);
    // The list price in Stars is not this order's amount: refused before any Stars are taken.
    const listPrice = await tg.preCheckout(TEST_TOKEN, bob, { payload: order.id, total_amount: 150 });
    expect(listPrice.params).toMatchObject({ ok: false, error_message: starsRefusal.wrongAmount });
    const { preCheckout } = await tg.payInvoice(TEST_TOKEN, bob, invoice);
    expect(preCheckout.params.ok).toBe(true);
    await tg.waitFor(() => keysSentTo(bob).length > 0, 8_000);
    expect(await orderOf(bob)).toMatchObject({ provider: "telegram_stars", paid_stars: 120 });
    const [use] = await sql()`
      select count(*)::int as n from orders o join promo_codes p on p.id = o.promo_code_id
      where p.code = 'STAR20' and o.paid_at is not null`;
    expect(use).toEqual({ n: 1 });
  });

  test("pre-checkout is refused for an expired order, a wrong amount and another buyer, each with what to do", async () => {
    const carol = buyer(620_000_003, "Carol");
    const payment = await paymentStep(carol);
    const order = await orderOf(carol);
    const invoice = await askInvoice(carol, payment);

    const mallory = buyer(620_000_004, "Mallory");
    const other = await tg.preCheckout(TEST_TOKEN, mallory, { payload: order.id, total_amount: 150 });
    expect(other.params).toMatchObject({ ok: false, error_message: starsRefusal.notYours });
    // Nor can another buyer get an invoice for it from a forged button.
    const from = tg.calls.length;
    tg.pressButton(TEST_TOKEN, mallory, `xtr:${order.id}`, { message_id: 1 });
    const refused = await tg.waitFor((calls) =>
      calls.slice(from).find((c) => c.method === "answerCallbackQuery" && c.params.text),
    );
    expect(refused.params).toMatchObject({ text: starsRefusal.notYours, show_alert: true });

    const cheap = await tg.preCheckout(TEST_TOKEN, carol, { payload: order.id, total_amount: 1 });
    expect(cheap.params).toMatchObject({ ok: false, error_message: starsRefusal.wrongAmount });
    const rubles = await tg.preCheckout(TEST_TOKEN, carol, { payload: order.id, total_amount: 150, currency: "RUB" });
    expect(rubles.params).toMatchObject({ ok: false, error_message: starsRefusal.wrongAmount });
    const unknown = await tg.preCheckout(TEST_TOKEN, carol, { payload: "999999999", total_amount: 150 });
    expect(unknown.params).toMatchObject({ ok: false, error_message: starsRefusal.noOrder });

    // The reservation runs out (the expiry job has not reached it yet): refused, and so once it is expired.
    await sql()`update orders set reserved_until = now() - interval '1 second' where id = ${order.id}`;
    const late = await tg.payInvoice(TEST_TOKEN, carol, invoice);
    expect(late).toMatchObject({ chargeId: null });
    expect(late.preCheckout.params).toMatchObject({ ok: false, error_message: starsRefusal.expired });
    await sql()`update orders set status = 'expired' where id = ${order.id}`;
    const expired = await tg.preCheckout(TEST_TOKEN, carol, { payload: order.id, total_amount: 150 });
    expect(expired.params).toMatchObject({ ok: false, error_message: starsRefusal.expired });
    expect((await orderOf(carol)).provider).toBeNull();
    for (const call of [other, cheap, rubles, unknown, late.preCheckout, expired]) {
      expect(String(call.params.error_message).length).toBeLessThanOrEqual(255);
    }
  });

  test("Stars are offered only while switched on and for a duration with a Stars price", async () => {
    const dan = buyer(620_000_005, "Dan");
    const week = await paymentStep(dan, "7 дней • 899₽");
    expect(buttonsOf(week).map((b) => b.text)).toEqual(["Оплатить 899₽", "« В каталог"]);
    await running.shop.settings.update({ starsEnabled: false });
    try {
      const eve = buyer(620_000_006, "Eve");
      const payment = await paymentStep(eve);
      expect(buttonsOf(payment).map((b) => b.text)).toEqual(["Оплатить 1999₽", "« В каталог"]);
      const order = await orderOf(eve);
      const pre = await tg.preCheckout(TEST_TOKEN, eve, { payload: order.id, total_amount: 150 });
      expect(pre.params).toMatchObject({ ok: false, error_message: starsRefusal.off });
    } finally {
      await running.shop.settings.update({ starsEnabled: true });
    }
  });

  test("with AnyPay not configured, Stars alone are offered and the text says so", async () => {
    await running.shop.settings.update({ anypayMerchantId: null });
    try {
      const una = buyer(620_000_014, "Una");
      const payment = await paymentStep(una);
      expect(buttonsOf(payment).map((b) => b.text)).toEqual(["Оплатить 150 ⭐", "« В каталог"]);
      expect(String(payment.params.text)).toEndWith(
        "Нажмите «Оплатить ⭐», чтобы получить счёт в звёздах Telegram прямо в чате. После оплаты ключ придёт в этот чат.",
      );
    } finally {
      await running.shop.settings.update({ anypayMerchantId: "70003" });
    }
  });

  test("a payment the bot gets while switched off is still settled: the Stars are taken already", async () => {
    const fay = buyer(620_000_007, "Fay");
    const payment = await paymentStep(fay);
    const invoice = await askInvoice(fay, payment);
    await running.shop.settings.update({ botEnabled: false });
    try {
      const { preCheckout, chargeId } = await tg.payInvoice(TEST_TOKEN, fay, invoice);
      expect(preCheckout.params.ok).toBe(true);
      await tg.waitFor(() => keysSentTo(fay).length > 0, 8_000);
      expect(await orderOf(fay)).toMatchObject({ provider: "telegram_stars", transaction_id: chargeId });
    } finally {
      await running.shop.settings.update({ botEnabled: true });
    }
  });

  test("the same payment reported to two processes at once is applied once", async () => {
    const gus = buyer(620_000_008, "Gus");
    await paymentStep(gus);
    const order = await orderOf(gus);
    const processes = [0, 1].map(() =>
      createCheckout({
        shop: running.shop,
        messenger: createTelegramMessenger({ telegramApiUrl: tg.url, token: async () => TEST_TOKEN }),
        config: running.shop.deps.config,
      }),
    );
    const notice = {
      kind: "paid" as const,
      userId: gus.id,
      currency: "XTR",
      totalAmount: 150,
      payload: order.id,
      chargeId: "stxRace1",
    };
    const answers = await Promise.all([...processes, ...processes].map((c) => c.stars.receive(notice)));
    expect(answers.every((a) => a.ok)).toBe(true);
    expect(await sql()`select 1 from payments where transaction_id = 'stxRace1'`).toHaveLength(1);
    expect(await sql()`select 1 from keys where order_id = ${order.id} and state = 'sold'`).toHaveLength(1);
    await tg.waitFor(() => keysSentTo(gus).length > 0, 8_000);
    await Bun.sleep(300);
    expect(keysSentTo(gus)).toHaveLength(1);
  });

  test("a payment that fits no order of the payer's is given back at once, and the admins are told", async () => {
    const hal = buyer(620_000_009, "Hal");
    const ivy = buyer(620_000_010, "Ivy");
    await paymentStep(hal);
    const hals = await orderOf(hal);
    const from = tg.calls.length;
    const { chargeId } = tg.successfulPayment(TEST_TOKEN, ivy, { payload: hals.id, total_amount: 150 });
    const told = await production.nextTo(ivy, from);
    expect(told.params.text).toBe(
      "Этот платёж не подошёл ни к одному вашему заказу, поэтому звёзды возвращены. Оформите покупку в каталоге (/start).",
    );
    expect(tg.callsOf("refundStarPayment").at(-1)?.params).toMatchObject({
      user_id: ivy.id,
      telegram_payment_charge_id: chargeId,
    });
    expect(tg.charges.get(chargeId)?.refunded).toBe(true);
    const alert = await tg.waitFor(() =>
      tg.callsOf("sendMessage", ADMIN_ID).find((c) => String(c.params.text).includes(chargeId)),
    );
    expect(String(alert.params.text)).toContain("Звёзды возвращены покупателю автоматически.");
    expect((await orderOf(hal)).status).toBe("pending");
  });
});

describe("giving Stars back from the order page", () => {
  test("a late payment with no key left is paid_no_stock; «Вернуть звёзды» gives it back once and closes the order", async () => {
    const jo = buyer(620_000_011, "Jo");
    const payment = await paymentStep(jo);
    const order = await orderOf(jo);
    const invoice = await askInvoice(jo, payment);
    const pre = await tg.preCheckout(TEST_TOKEN, jo, { payload: order.id, total_amount: 150 });
    expect(pre.params.ok).toBe(true);
    // Between the pre-checkout and the payment the reservation lapsed and every key of the duration was sold.
    await sql()`update orders set status = 'expired' where id = ${order.id}`;
    await sql()`update keys set state = 'available', order_id = null where order_id = ${order.id}`;
    await sql()`delete from keys where product_id = ${productId} and days = 30 and state = 'available'`;
    const from = tg.calls.length;
    const { chargeId } = tg.successfulPayment(TEST_TOKEN, jo, { payload: order.id, total_amount: 150 });
    const told = await production.nextTo(jo, from);
    const paid = await orderOf(jo);
    expect(paid).toMatchObject({ status: "paid_no_stock", provider: "telegram_stars", paid_stars: 150 });
    expect(told.params.text).toBe(paidNoStockText({ id: Number(order.id), productName: "Stalcraft", days: 30 }));
    const alert = await tg.waitFor(() =>
      tg.callsOf("sendMessage", ADMIN_ID).find((c) => String(c.params.text).includes(`Заказ №${order.id} оплачен`)),
    );
    expect(String(alert.params.text)).toContain("Сумма: 150 ⭐");
    expect(String(alert.params.text)).toContain("«Вернуть звёзды»");
    void invoice;

    const page = await panel.page(`/orders/${order.id}`);
    expect(page.html).toContain("Telegram Stars: 150 ⭐");
    expect(page.html).toContain("Вернуть звёзды");

    // Telegram refuses the first time (the bot's balance): shown in Russian, nothing changes.
    const stop = tg.onCall((call) =>
      call.method === "refundStarPayment" ? { code: 400, description: "Bad Request: BALANCE_TOO_LOW" } : undefined,
    );
    const failed = await panel.post(`/orders/${order.id}/refund-stars`, { transaction: chargeId }, { htmx: true });
    stop();
    expect(failed.status).toBe(502);
    expect(await failed.text()).toContain(
      "Telegram не вернул звёзды: на балансе бота не хватает звёзд. Пополните баланс бота и попробуйте снова. В магазине ничего не изменилось.",
    );
    expect(tg.charges.get(chargeId)?.refunded).toBe(false);
    expect((await orderOf(jo)).status).toBe("paid_no_stock");

    // A double click: two posts at once. Telegram is asked once; the second is told it is done.
    const [a, b] = await Promise.all([
      panel.post(`/orders/${order.id}/refund-stars`, { transaction: chargeId }, { htmx: true }),
      panel.post(`/orders/${order.id}/refund-stars`, { transaction: chargeId }, { htmx: true }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const texts = [await a.text(), await b.text()].join("\n");
    expect(texts).toContain("Звёзды возвращены покупателю: 150 ⭐. Заказ закрыт: ключ ему больше не уйдёт.");
    expect(texts).toContain("Эти звёзды уже возвращены");
    expect(
      tg.callsOf("refundStarPayment").filter((c) => c.params.telegram_payment_charge_id === chargeId),
    ).toHaveLength(2);
    expect(tg.charges.get(chargeId)?.refunded).toBe(true);
    const [ledger] = await sql()`
      select refunded_at is not null as refunded, refunded_by from payments where transaction_id = ${chargeId}`;
    expect(ledger).toEqual({ refunded: true, refunded_by: "admin" });
    expect((await orderOf(jo)).status).toBe("failed");
    const after = await panel.page(`/orders/${order.id}`);
    expect(after.html).toContain("звёзды возвращены");
    expect(after.html).toContain("(admin)");
    expect(after.html).not.toContain(">Вернуть звёзды<");
    const back = await tg.waitFor(() =>
      tg.callsOf("sendMessage", jo.id).find((c) => String(c.params.text).startsWith(`Звёзды за заказ №${order.id}`)),
    );
    expect(back.params.text).toBe(`Звёзды за заказ №${order.id} («Stalcraft 30 дней») возвращены: 150 ⭐.`);
    // New keys do not go to the closed order.
    await running.shop.keys.generate(productId, 30, 5);
    await running.shop.orders.fulfilWaiting();
    expect(await sql()`select 1 from keys where order_id = ${order.id}`).toHaveLength(0);
  });

  test("a second payment of a paid order delivers nothing more; its Stars are given back and it leaves the owner's list", async () => {
    const lee = buyer(620_000_013, "Lee");
    const payment = await paymentStep(lee);
    const order = await orderOf(lee);
    const invoice = await askInvoice(lee, payment);
    await tg.payInvoice(TEST_TOKEN, lee, invoice);
    await tg.waitFor(() => keysSentTo(lee).length > 0, 8_000);
    // A second invoice of the same order paid too (Telegram let both through before the first was settled).
    const from = tg.calls.length;
    const second = tg.successfulPayment(TEST_TOKEN, lee, { payload: order.id, total_amount: 150 });
    const told = await production.nextTo(lee, from);
    expect(told.params.text).toBe(
      `Заказ №${order.id} уже был оплачен раньше, поэтому эта оплата лишняя. Администратор уже знает и вернёт звёзды.`,
    );
    await Bun.sleep(300);
    expect(keysSentTo(lee)).toHaveLength(1);
    expect((await panel.page("/orders")).html).toContain(`#${order.id}`);
    const listed = async () => (await running.shop.orders.attention()).duplicatePayments.map((d) => d.orderId);
    expect(await listed()).toContain(Number(order.id));

    const page = await panel.page(`/orders/${order.id}`);
    expect(page.html).toContain("повторная оплата — верните звёзды");
    const refunded = await panel.post(
      `/orders/${order.id}/refund-stars`,
      { transaction: second.chargeId },
      { htmx: true },
    );
    expect(refunded.status).toBe(200);
    const html = await refunded.text();
    expect(html).toContain("Звёзды возвращены покупателю: 150 ⭐.");
    expect(html).not.toContain("Заказ закрыт");
    expect(tg.charges.get(second.chargeId)?.refunded).toBe(true);
    expect((await orderOf(lee)).status).toBe("delivered");
    expect(await listed()).not.toContain(Number(order.id));
  });

  test("a renewal paid in Stars after its key was banned can be given back; one paid for a working key cannot", async () => {
    const max = buyer(620_000_015, "Max");
    const issued = await running.shop.keys.issue(productId, 30, max.id);
    const place = async () => {
      const placed = await running.checkout.placeRenewal({ userId: max.id, keyId: issued.id, days: 30, seenRub: 1999 });
      if (placed.kind !== "placed") throw new Error(`renewal not placed: ${placed.kind}`);
      expect(placed.order.stars).toBe(150);
      return placed.order.id;
    };
    const pay = async (orderId: number) => {
      const from = tg.calls.length;
      const { chargeId } = tg.successfulPayment(TEST_TOKEN, max, { payload: String(orderId), total_amount: 150 });
      await production.nextTo(max, from);
      return chargeId;
    };

    const working = await place();
    const workingCharge = await pay(working);
    expect((await running.shop.orders.byId(working))!.paidBy).toBe("telegram_stars");
    expect((await panel.page(`/orders/${working}`)).html).not.toContain("Вернуть звёзды");

    // Placed while the key worked, banned, then paid: the Stars bought days the buyer cannot use.
    const late = await place();
    await running.shop.keys.setBanned({ id: issued.id }, true);
    // Telegram's check now refuses it, with the reason…
    const pre = await tg.preCheckout(TEST_TOKEN, max, { payload: String(late), total_amount: 150 });
    expect(pre.params).toMatchObject({ ok: false, error_message: starsRefusal.keyBanned });
    // …but one that passed the check a moment before the ban is paid all the same.
    const lateCharge = await pay(late);
    const page = await panel.page(`/orders/${late}`);
    expect(page.html).toContain("Продление оплачено звёздами, а ключ заблокирован");
    // The renewal paid before the ban bought days the buyer had: not given back here, banned or not.
    expect((await panel.page(`/orders/${working}`)).html).not.toContain("Вернуть звёзды");
    const refused = await panel.post(`/orders/${working}/refund-stars`, { transaction: workingCharge }, { htmx: true });
    expect(refused.status).toBe(409);
    const refunded = await panel.post(`/orders/${late}/refund-stars`, { transaction: lateCharge }, { htmx: true });
    expect(refunded.status).toBe(200);
    expect(await refunded.text()).toContain("Звёзды возвращены покупателю: 150 ⭐.");
    expect(tg.charges.get(lateCharge)?.refunded).toBe(true);
    expect(tg.charges.get(workingCharge)?.refunded).toBe(false);
  });

  test("Stars that bought the key cannot be given back; a forged transaction is refused", async () => {
    const kim = buyer(620_000_012, "Kim");
    const payment = await paymentStep(kim);
    const order = await orderOf(kim);
    const { chargeId } = await tg.payInvoice(TEST_TOKEN, kim, await askInvoice(kim, payment));
    await tg.waitFor(() => keysSentTo(kim).length > 0, 8_000);
    const page = await panel.page(`/orders/${order.id}`);
    expect(page.html).not.toContain("Вернуть звёзды");
    const refused = await panel.post(`/orders/${order.id}/refund-stars`, { transaction: chargeId! }, { htmx: true });
    expect(refused.status).toBe(409);
    expect(await refused.text()).toContain("Вернуть звёзды можно только за оплату, которая не дала ключа");
    const forged = await panel.post(`/orders/${order.id}/refund-stars`, { transaction: "nope" }, { htmx: true });
    expect(forged.status).toBe(404);
    expect(tg.charges.get(chargeId!)?.refunded).toBe(false);
  });

  test("the orders list names Stars as the provider", async () => {
    const list = await panel.page("/orders");
    expect(list.html).toContain("Telegram Stars");
    expect(list.html).toContain("150 ⭐");
  });
});
