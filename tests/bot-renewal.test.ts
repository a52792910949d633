/**
 * A buyer renews their key in the bot (docs/panel.md#renewals), with the shop wired as in production (runShop: HTTP
 * server, the real bot long-polling a fake Bot API, the AnyPay endpoint, the delivery job): «Продлить» in «Мои
 * покупки», the durations with a price, the confirmation, AnyPay's signed notification, what the renewal does to the
 * expiry in each of its three cases, the buyer's message, the licence API, and every stale or forged button.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { RedisCache } from "../src/cache/cache.ts";
import type { Config } from "../src/config.ts";
import type { RunningShop } from "../src/server.ts";
import { followChanges } from "../src/shop/changes.ts";
import { createShop } from "../src/shop/index.ts";
import type { KeyRecord } from "../src/shop/keys/keys.ts";
import { moscowDateTime } from "../src/shop/texts/buyers.ts";
import { AnypayNotifier } from "./helpers/anypay.ts";
import { buttonData, buttonsOf, buyer, messageIdOf } from "./helpers/bot.ts";
import { type FakeTelegram, type RecordedCall, TEST_TOKEN, type TgUser } from "./helpers/fake-telegram.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { type ProductionShop, startProductionShop } from "./helpers/running-shop.ts";

setDefaultTimeout(30_000);

const MERCHANT_ID = "70003";
const SECRET = "renewal-e2e-secret";
const PRODUCT = "Stalcraft";
const DAY = 86_400_000;

let tg: FakeTelegram;
let running: RunningShop;
let production: ProductionShop;
let anypay: AnypayNotifier;
let productId: number;
const ADMIN = buyer(556_000_001, "Админ");

beforeAll(async () => {
  production = await startProductionShop();
  ({ tg, running } = production);
  const { shop } = running;
  const product = await shop.products.create({ name: PRODUCT });
  productId = product.id;
  await shop.products.setPrice(productId, 30, 1999);
  await shop.products.setPrice(productId, 7, 899);
  // A price and no stock at all: renewing needs none.
  await shop.products.setPrice(productId, 90, 2999);
  await shop.keys.generate(productId, 30, 30);
  await shop.keys.generate(productId, 7, 10);
  await shop.admins.add(ADMIN.id, "owner");
  await shop.settings.update({
    botToken: TEST_TOKEN,
    botEnabled: true,
    anypayMerchantId: MERCHANT_ID,
    anypaySecretKey: SECRET,
  });
  await shop.promos.create("RENEW50", {
    discount: { percent: 50, rub: null },
    productId: null,
    days: null,
    maxUses: null,
    maxUsesPerBuyer: null,
    validUntil: null,
    enabled: true,
  });
  anypay = new AnypayNotifier(`${running.url}payments/anypay`, MERCHANT_ID, SECRET);
}, 30_000);

afterAll(async () => {
  await production.stop();
});

/** A press, with Telegram's answer to it and the screen the bot showed next. */
async function press(user: TgUser, data: string, under: RecordedCall) {
  const from = tg.calls.length;
  tg.pressButton(TEST_TOKEN, user, data, { message_id: messageIdOf(under), text: String(under.params.text ?? "") });
  const answer = await tg.waitFor((calls) =>
    calls.slice(from).find((c) => c.method === "answerCallbackQuery" && c.params.callback_query_id),
  );
  const screen = await production.nextTo(user, from);
  return { answer, screen };
}

const tap = async (user: TgUser, label: string, under: RecordedCall) =>
  (await press(user, buttonData(under, label), under)).screen;

async function licence(key: string, uuid: string) {
  const res = await fetch(`${running.url}api/${PRODUCT}/auth`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key, uuid }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const keyRow = async (id: number) => (await running.shop.keys.byId(id))!;
const stock = async () =>
  Number(
    (
      await running.shop.deps.sql<{ n: string }[]>`
      select count(*) as n from keys where product_id = ${productId} and state = 'available'`
    )[0]!.n,
  );

/** The panel, logged in as its owner, over the shop's real HTTP port. */
async function ownerPanel(): Promise<PanelClient> {
  const { password } = await running.shop.accounts.reset("owner");
  const base = running.url.replace(/\/$/, "");
  const panel = new PanelClient({
    request: (path, init) => fetch(`${base}${path}`, { ...init, redirect: "manual" }),
    config: { basePath: "/Morpheus Private" } as Config,
  });
  await panel.login("owner", password);
  return panel;
}

/** From «Мои покупки» to the payment screen: «Продлить №n», a duration, «Подтвердить». */
async function renewUpToPayment(user: TgUser, n: number, duration: string) {
  const list = await production.say(user, "/purchases");
  const durations = await tap(user, `🔄 Продлить №${n}`, list);
  const confirm = await tap(user, duration, durations);
  const payment = await tap(user, "Подтвердить", confirm);
  const link = buttonsOf(payment).find((b) => b.url)?.url;
  const orderId = Number(new URL(link!).searchParams.get("pay_id"));
  return { list, durations, confirm, payment, link: new URL(link!), order: (await running.shop.orders.byId(orderId))! };
}

/** AnyPay reports the payment; resolves with the buyer's message about the renewal. */
async function pay(user: TgUser, order: { id: number; amountRub: number }, fields = anypay.paid(order)) {
  const from = tg.calls.length;
  const answer = await anypay.send(fields);
  expect(answer).toMatchObject({ status: 200, body: "OK" });
  return { fields, message: await production.nextTo(user, from) };
}

test("a bought, activated key is renewed: expiry + N days, once however often AnyPay repeats, stock untouched", async () => {
  const alice = buyer(556_000_002, "Alice");
  // Bought through the bot and AnyPay, then activated by the loader.
  const catalogue = await production.say(alice, "/start");
  const card = await tap(alice, PRODUCT, catalogue);
  const confirmBuy = await tap(alice, "30 дней • 1999₽", card);
  const paymentBuy = await tap(alice, "Подтвердить", confirmBuy);
  const buyOrder = Number(new URL(buttonsOf(paymentBuy).find((b) => b.url)!.url!).searchParams.get("pay_id"));
  const from = tg.calls.length;
  await anypay.send(anypay.paid({ id: buyOrder, amountRub: 1999 }));
  await tg.waitFor((calls) => calls.slice(from).find((c) => c.method === "sendMessage" || c.method === "sendDocument"));
  const [sold] = await running.shop.deps.sql<{ id: string }[]>`select id from keys where order_id = ${buyOrder}`;
  const key = await keyRow(Number(sold!.id));
  expect((await licence(key.key, "ALICE-PC")).status).toBe(200);
  const activated = await keyRow(key.id);
  const stockBefore = await stock();

  const list = await production.say(alice, "/purchases");
  expect(String(list.params.text)).toContain(`Статус: действует до ${moscowDateTime(activated.expiresAt!)}`);
  const durations = await tap(alice, "🔄 Продлить №1", list);
  expect(durations.method).toBe("editMessageText");
  expect(String(durations.params.text)).toBe(
    `Продление ключа\n\nКлюч: ${key.key}\nТовар: ${PRODUCT} 30 дней\n\nВыберите, на сколько продлить:`,
  );
  // Every duration with a price, stock or not.
  expect(buttonsOf(durations).map((b) => b.text)).toEqual([
    "7 дней • 899₽",
    "30 дней • 1999₽",
    "90 дней • 2999₽",
    "« К покупкам",
  ]);
  const confirm = await tap(alice, "7 дней • 899₽", durations);
  expect(String(confirm.params.text)).toBe(
    [
      "Подтвердите продление:",
      `Ключ: ${key.key}`,
      `${PRODUCT} 7 дней • 899₽.`,
      `Срок действия продлится на 7 дней: сейчас до ${moscowDateTime(activated.expiresAt!)}.`,
      "После подтверждения вам предоставится страница для оплаты, после успешной оплаты ключ продлится.",
    ].join("\n"),
  );
  expect(buttonsOf(confirm).map((b) => b.text)).toEqual(["Подтвердить", "🎟 Ввести промокод", "« Назад"]);
  const payment = await tap(alice, "Подтвердить", confirm);
  const link = new URL(buttonsOf(payment).find((b) => b.url)!.url!);
  const order = (await running.shop.orders.byId(Number(link.searchParams.get("pay_id"))))!;
  expect(order).toMatchObject({ kind: "renewal", keyId: key.id, days: 7, amountRub: 899, status: "pending" });
  expect(link.searchParams.get("amount")).toBe("899");
  expect(link.searchParams.get("desc")).toBe(`Продление: ${PRODUCT} 7 дней (заказ ${order.id})`);
  expect(String(payment.params.text)).toStartWith(
    `Заказ №${order.id}: продление ключа ${key.key}\n${PRODUCT} 7 дней • 899₽.`,
  );
  // Nothing is reserved for a renewal.
  expect(await stock()).toBe(stockBefore);

  // The loader's answer is cached before the payment; the renewal must reach it at once.
  expect((await licence(key.key, "ALICE-PC")).body.expires_at).toBe(activated.expiresAt!.toISOString());
  const { fields, message } = await pay(alice, order);
  const renewed = await keyRow(key.id);
  expect(renewed.expiresAt!.getTime()).toBe(activated.expiresAt!.getTime() + 7 * DAY);
  expect(renewed.hwid).toBe("ALICE-PC");
  expect(String(message.params.text)).toBe(
    `Ключ продлён на 7 дней.\nКлюч: ${key.key}\nТовар: ${PRODUCT}\nДействует до: ${moscowDateTime(renewed.expiresAt!)}`,
  );
  const answer = await licence(key.key, "ALICE-PC");
  expect(answer).toMatchObject({ status: 200, body: { expires_at: renewed.expiresAt!.toISOString(), days: 36 } });

  // AnyPay repeats the notification: OK, and nothing more happens.
  const messagesBefore = tg.callsOf("sendMessage", alice.id).length;
  expect(await anypay.send(fields)).toMatchObject({ status: 200, body: "OK" });
  await running.checkout.idle();
  await Bun.sleep(300);
  expect((await keyRow(key.id)).expiresAt!.getTime()).toBe(renewed.expiresAt!.getTime());
  expect(tg.callsOf("sendMessage", alice.id).length).toBe(messagesBefore);
  expect(await stock()).toBe(stockBefore);
  expect((await running.shop.orders.byId(order.id))!.status).toBe("delivered");
  // On the key's timeline, by the buyer.
  const [event] = await running.shop.deps.sql<{ actor: string; details: Record<string, unknown> }[]>`
    select actor, details from key_events where key_id = ${key.id} and kind = 'renewed'`;
  expect(event).toEqual({
    actor: `buyer:${alice.id}`,
    details: { orderId: order.id, days: 7, expiresAt: renewed.expiresAt!.toISOString(), renewedDays: 0 },
  });
});

test("an expired key renewed runs N days from now and keeps its HWID", async () => {
  const bob = buyer(556_000_003, "Bob");
  const issued = await running.shop.keys.issue(productId, 30, bob.id);
  await running.shop.deps.sql`update keys set activated_at = now() - interval '40 days',
    expires_at = now() - interval '10 days', hwid = 'BOB-PC' where id = ${issued.id}`;
  expect((await licence(issued.key, "BOB-PC")).body.message).toBe("Key expired");

  const { confirm, order } = await renewUpToPayment(bob, 1, "30 дней • 1999₽");
  expect(String(confirm.params.text)).toContain(
    "Ключ истёк: после оплаты он будет действовать 30 дней с момента оплаты, привязка к компьютеру сохранится.",
  );
  const before = Date.now();
  const { message } = await pay(bob, order);
  const renewed = await keyRow(issued.id);
  expect(renewed.expiresAt!.getTime()).toBeGreaterThanOrEqual(before + 30 * DAY - 1_000);
  expect(renewed.expiresAt!.getTime()).toBeLessThanOrEqual(Date.now() + 30 * DAY + 1_000);
  expect(renewed.hwid).toBe("BOB-PC");
  expect(String(message.params.text)).toContain(`Действует до: ${moscowDateTime(renewed.expiresAt!)}`);
  expect(await licence(issued.key, "BOB-PC")).toMatchObject({ status: 200, body: { days: 29, hours: 23 } });
  expect((await licence(issued.key, "OTHER-PC")).body.message).toBe("HWID mismatch");
});

test("a key not yet activated renewed gets N more days on its duration; the clock starts at activation", async () => {
  const carol = buyer(556_000_004, "Carol");
  const issued = await running.shop.keys.issue(productId, 7, carol.id);
  const { confirm, order } = await renewUpToPayment(carol, 1, "30 дней • 1999₽");
  expect(String(confirm.params.text)).toContain(
    "Ключ ещё не активирован: после активации он будет действовать на 30 дней дольше.",
  );
  const { message } = await pay(carol, order);
  const renewed = await keyRow(issued.id);
  expect(renewed.expiresAt).toBeNull();
  expect(String(message.params.text)).toBe(
    `Ключ продлён на 30 дней.\nКлюч: ${issued.key}\nТовар: ${PRODUCT}\nСрок: 37 дней с первой активации`,
  );
  const list = await production.say(carol, "/purchases");
  expect(String(list.params.text)).toContain("Статус: не активирован (срок 37 дней с первой активации)");
  // The key's page says so too, before the activation.
  const keyPage = await (await ownerPanel()).page(`/keys/${issued.id}`);
  expect(keyPage.html).toContain("через 37 дней после первой активации (7 дней + 30 дней продления)");
  expect(await licence(issued.key, "CAROL-PC")).toMatchObject({ status: 200, body: { days: 36, hours: 23 } });
});

test("two presses of «Подтвердить» at once place one renewal order", async () => {
  const dan = buyer(556_000_005, "Dan");
  // Through the bot: both presses of one confirmation, sent at once.
  const pressed = await running.shop.keys.issue(productId, 30, dan.id);
  const list = await production.say(dan, "/purchases");
  const durations = await tap(dan, "🔄 Продлить №1", list);
  const confirm = await tap(dan, "7 дней • 899₽", durations);
  const data = buttonData(confirm, "Подтвердить");
  const from = tg.calls.length;
  for (let i = 0; i < 2; i++) tg.pressButton(TEST_TOKEN, dan, data, { message_id: messageIdOf(confirm) });
  await tg.waitFor(
    (calls) => calls.slice(from).filter((c) => c.method === "answerCallbackQuery").length === 2 || undefined,
  );
  const viaBot = await running.shop.deps.sql`select 1 from orders where key_id = ${pressed.id} and kind = 'renewal'`;
  expect(viaBot.length).toBe(1);

  // And the shop itself asked for a first order twice at the same moment (two app processes, two devices).
  const raced = await running.shop.keys.issue(productId, 30, dan.id);
  const place = () =>
    running.shop.orders.renewals.place({ userId: dan.id, keyId: raced.id, days: 7, expectedRub: 899 });
  const results = await Promise.all([place(), place(), place()]);
  const orders = await running.shop.deps.sql<{ id: string }[]>`
    select id from orders where key_id = ${raced.id} and kind = 'renewal'`;
  expect(orders.length).toBe(1);
  expect(results.map((r) => ("order" in r ? r.order.id : null))).toEqual(Array(3).fill(Number(orders[0]!.id)));
});

test("a promo code applies to a renewal, and the discounted amount is what AnyPay must report", async () => {
  const erin = buyer(556_000_006, "Erin");
  const issued = await running.shop.keys.issue(productId, 30, erin.id);
  const list = await production.say(erin, "/purchases");
  const durations = await tap(erin, "🔄 Продлить №1", list);
  const confirm = await tap(erin, "30 дней • 1999₽", durations);
  const prompt = await tap(erin, "🎟 Ввести промокод", confirm);
  expect(buttonsOf(prompt).map((b) => b.text)).toEqual(["« Отмена"]);
  const withCode = await production.say(erin, "renew50");
  expect(String(withCode.params.text)).toContain(`${PRODUCT} 30 дней • 1000₽ вместо 1999₽ (промокод RENEW50, −50%).`);
  const payment = await tap(erin, "Подтвердить", withCode);
  const link = new URL(buttonsOf(payment).find((b) => b.url)!.url!);
  expect(link.searchParams.get("amount")).toBe("1000");
  const order = (await running.shop.orders.byId(Number(link.searchParams.get("pay_id"))))!;
  expect(order).toMatchObject({ kind: "renewal", amountRub: 1000, promoCode: "RENEW50" });
  // The list price is refused: the order is for the discounted amount.
  const wrong = await anypay.send(anypay.paid({ id: order.id, amountRub: 1999 }));
  expect(wrong.status).toBe(400);
  await pay(erin, order);
  expect((await keyRow(issued.id)).renewedDays).toBe(30);
});

test("a renewal's promo code refusals speak of the renewal; with Stars the list price stands by the roubles", async () => {
  const ned = buyer(556_000_017, "Ned");
  await running.shop.keys.issue(productId, 30, ned.id);
  await running.shop.products.setStarsPrice(productId, 30, 150);
  await running.shop.settings.update({ starsEnabled: true });
  try {
    const list = await production.say(ned, "/purchases");
    const durations = await tap(ned, "🔄 Продлить №1", list);
    const confirm = await tap(ned, "30 дней • 1999₽", durations);
    await tap(ned, "🎟 Ввести промокод", confirm);
    const unknown = await production.say(ned, "NOSUCH");
    expect(String(unknown.params.text)).toStartWith(
      "Промокода «NOSUCH» нет. Проверьте, как он написан, и нажмите «🎟 Ввести промокод» ещё раз — или подтвердите продление без него.",
    );
    expect(String(unknown.params.text)).toContain("Подтвердите продление:");
    await tap(ned, "🎟 Ввести промокод", unknown);
    const withCode = await production.say(ned, "RENEW50");
    const payment = await tap(ned, "Подтвердить", withCode);
    const orderId = Number(new URL(buttonsOf(payment).find((b) => b.url)!.url!).searchParams.get("pay_id"));
    expect(String(payment.params.text)).toContain(
      `${PRODUCT} 30 дней • 1000₽ вместо 1999₽ (промокод RENEW50) или 75 ⭐.`,
    );
    expect(await running.shop.orders.byId(orderId)).toMatchObject({ amountRub: 1000, stars: 75 });
  } finally {
    await running.shop.settings.update({ starsEnabled: false });
    await running.shop.products.setStarsPrice(productId, 30, null);
  }
});

test("stale buttons: banned meanwhile, price removed, someone else's key — a notice and a fresh screen, nothing placed", async () => {
  const fay = buyer(556_000_007, "Fay");
  const eve = buyer(556_000_008, "Eve");
  const issued = await running.shop.keys.issue(productId, 30, fay.id);
  const list = await production.say(fay, "/purchases");
  const durations = await tap(fay, "🔄 Продлить №1", list);
  const confirm = await tap(fay, "7 дней • 899₽", durations);

  // Eve forges every renewal button for Fay's key: a notice, her own list, no order anywhere.
  const evesList = await production.say(eve, "/purchases");
  for (const data of [`rn:${issued.id}`, `rd:${issued.id}:7:899`, `rc:${issued.id}:7:899`, `rpc:${issued.id}:7:899`]) {
    const forged = await press(eve, data, evesList);
    expect(forged.answer.params.text).toBe("Эта кнопка устарела.");
    expect(forged.screen.params.text).toBe("У вас пока нет покупок.");
  }
  expect((await running.shop.deps.sql`select 1 from orders where key_id = ${issued.id}`).length).toBe(0);

  // The 7-day price removed while Fay looks at the confirmation: the durations left.
  await running.shop.products.setPrice(productId, 7, null);
  try {
    const gone = await press(fay, buttonData(confirm, "Подтвердить"), confirm);
    expect(gone.answer.params.text).toBe("Продление на 7 дней сейчас недоступно.");
    expect(buttonsOf(gone.screen).map((b) => b.text)).toEqual(["30 дней • 1999₽", "90 дней • 2999₽", "« К покупкам"]);
  } finally {
    await running.shop.products.setPrice(productId, 7, 899);
  }
  // A changed price: the notice and the durations at their prices now.
  await running.shop.products.setPrice(productId, 7, 999);
  try {
    const changed = await press(fay, buttonData(confirm, "Подтвердить"), confirm);
    expect(changed.answer.params.text).toBe("Цена изменилась: теперь 999₽.");
    expect(buttonsOf(changed.screen).map((b) => b.text)).toContain("7 дней • 999₽");
  } finally {
    await running.shop.products.setPrice(productId, 7, 899);
  }

  // Banned meanwhile: refused with the reason, and the fresh list offers nothing for it.
  await running.shop.keys.setBanned({ id: issued.id }, true);
  const banned = await press(fay, buttonData(confirm, "Подтвердить"), confirm);
  expect(banned.answer.params).toMatchObject({
    text: "Этот ключ заблокирован: продлить его или сбросить привязку нельзя. Если это ошибка, напишите администратору.",
    show_alert: true,
  });
  expect(String(banned.screen.params.text)).toContain("Статус: заблокирован");
  expect(buttonsOf(banned.screen).map((b) => b.text)).toEqual(["« В каталог"]);
  const again = await press(fay, buttonData(list, "🔄 Продлить №1"), list);
  expect(again.answer.params.text).toBe(
    "Этот ключ заблокирован: продлить его или сбросить привязку нельзя. Если это ошибка, напишите администратору.",
  );
  expect((await running.shop.deps.sql`select 1 from orders where key_id = ${issued.id}`).length).toBe(0);
});

test("a promo code typed for a renewal after its key was banned says why and what to do, not that a button is stale", async () => {
  const max = buyer(556_000_016, "Max");
  const issued = await running.shop.keys.issue(productId, 30, max.id);
  const list = await production.say(max, "/purchases");
  const durations = await tap(max, "🔄 Продлить №1", list);
  const confirm = await tap(max, "30 дней • 1999₽", durations);
  await tap(max, "🎟 Ввести промокод", confirm);
  await running.shop.keys.setBanned({ id: issued.id }, true);
  const answer = await production.say(max, "RENEW50");
  expect(String(answer.params.text)).not.toContain("кнопка устарела");
  expect(String(answer.params.text)).toStartWith("Этот ключ заблокирован");
  expect(String(answer.params.text)).toContain("напишите администратору");
  expect(buttonsOf(answer).map((b) => b.text)).toEqual(["« К покупкам"]);
  expect((await running.shop.deps.sql`select 1 from orders where key_id = ${issued.id}`).length).toBe(0);
});

test("a renewal paid after its key was banned: the money is recorded, the days wait behind the ban, admins decide", async () => {
  const gus = buyer(556_000_009, "Gus");
  const issued = await running.shop.keys.issue(productId, 30, gus.id);
  await running.shop.deps.sql`update keys set activated_at = now(), expires_at = now() + interval '5 days',
    hwid = 'GUS-PC' where id = ${issued.id}`;
  const before: KeyRecord = await keyRow(issued.id);
  const { order } = await renewUpToPayment(gus, 1, "7 дней • 899₽");
  await running.shop.keys.setBanned({ id: issued.id }, true);

  const adminFrom = tg.calls.length;
  const { message } = await pay(gus, order);
  const after = await keyRow(issued.id);
  expect(after.bannedAt).not.toBeNull();
  expect(after.expiresAt!.getTime()).toBe(before.expiresAt!.getTime() + 7 * DAY);
  expect((await running.shop.orders.byId(order.id))!.status).toMatch(/^(paid|delivered)$/);
  expect(String(message.params.text)).toContain("Ключ заблокирован администратором, поэтому пока не работает.");
  const alert = await tg.waitFor((calls) =>
    calls.slice(adminFrom).find((c) => c.method === "sendMessage" && Number(c.params.chat_id) === ADMIN.id),
  );
  expect(String(alert.params.text)).toContain(
    `Оплачено продление заблокированного ключа ${issued.key} (заказ №${order.id}`,
  );
  expect((await licence(issued.key, "GUS-PC")).body.message).toBe("Key banned");
});

test("the panel shows renewals as «продление»: Заказы, the order page with its key, the buyer's statistics and log", async () => {
  const hal = buyer(556_000_010, "Hal");
  const issued = await running.shop.keys.issue(productId, 30, hal.id);
  const { order } = await renewUpToPayment(hal, 1, "7 дней • 899₽");
  await pay(hal, order);

  const panel = await ownerPanel();
  const orders = await panel.page(`/orders?q=${hal.id}`);
  expect(orders.status).toBe(200);
  expect(orders.html).toContain(">продление<");
  const page = await panel.page(`/orders/${order.id}`);
  expect(page.html).toContain("Продлеваемый ключ");
  expect(page.html).toContain(issued.key);
  const user = await panel.page(`/users/${hal.id}`);
  expect(user.html).toContain("из них продлений: 1");
  expect(user.html).toContain(`Оплатил заказ #${order.id}: продление ключа`);
  // The key's page has the renewal on its timeline.
  const keyPage = await panel.page(`/keys/${issued.id}`);
  expect(keyPage.html).toContain(`Продлён покупателем на 7 дней (заказ #${order.id})`);
});

test("a renewal is paid in Telegram Stars like a purchase: invoice, pre-checkout, payment, once per charge", async () => {
  const ida = buyer(556_000_011, "Ida");
  const issued = await running.shop.keys.issue(productId, 30, ida.id);
  await running.shop.deps.sql`update keys set activated_at = now(), expires_at = now() + interval '3 days',
    hwid = 'IDA-PC' where id = ${issued.id}`;
  const before = await keyRow(issued.id);
  await running.shop.products.setStarsPrice(productId, 30, 150);
  await running.shop.settings.update({ starsEnabled: true });
  try {
    const { payment, order } = await renewUpToPayment(ida, 1, "30 дней • 1999₽");
    expect(order).toMatchObject({ kind: "renewal", stars: 150 });
    expect(String(payment.params.text)).toContain("1999₽ или 150 ⭐");
    const star = buttonsOf(payment).find((b) => b.text.includes("⭐"))!;
    const from = tg.calls.length;
    tg.pressButton(TEST_TOKEN, ida, star.callback_data!, { message_id: messageIdOf(payment) });
    const invoice = await tg.waitFor((calls) => calls.slice(from).find((c) => c.method === "sendInvoice"));
    expect(invoice.params).toMatchObject({
      payload: String(order.id),
      currency: "XTR",
      title: `Продление: ${PRODUCT} 30 дней`,
    });
    const paidFrom = tg.calls.length;
    const { preCheckout, chargeId } = await tg.payInvoice(TEST_TOKEN, ida, invoice);
    expect(preCheckout.params.ok).toBe(true);
    const message = await production.nextTo(ida, paidFrom);
    const renewed = await keyRow(issued.id);
    expect(renewed.expiresAt!.getTime()).toBe(before.expiresAt!.getTime() + 30 * DAY);
    expect(String(message.params.text)).toStartWith("Ключ продлён на 30 дней.");
    expect(await running.shop.orders.byId(order.id)).toMatchObject({ paidBy: "telegram_stars", paidStars: 150 });
    // Telegram repeats the update: nothing more.
    tg.successfulPayment(TEST_TOKEN, ida, { payload: String(order.id), total_amount: 150, chargeId: chargeId! });
    await Bun.sleep(500);
    expect((await keyRow(issued.id)).expiresAt!.getTime()).toBe(renewed.expiresAt!.getTime());
  } finally {
    await running.shop.settings.update({ starsEnabled: false });
    await running.shop.products.setStarsPrice(productId, 30, null);
  }
});

test("Telegram's check refuses a renewal in Stars with the way to renew again, not a purchase's catalogue", async () => {
  const lea = buyer(556_000_015, "Lea");
  const issued = await running.shop.keys.issue(productId, 30, lea.id);
  await running.shop.deps.sql`update keys set activated_at = now(), expires_at = now() + interval '3 days',
    hwid = 'LEA-PC' where id = ${issued.id}`;
  await running.shop.products.setStarsPrice(productId, 30, 150);
  await running.shop.settings.update({ starsEnabled: true });
  try {
    const { payment, order } = await renewUpToPayment(lea, 1, "30 дней • 1999₽");
    // The way back from a renewal's payment step is to the buyer's keys, where it started.
    expect(buttonsOf(payment).at(-1)?.text).toBe("« К покупкам");
    const payload = String(order.id);
    // A renewal holds no reservation: its refusals name neither one nor the catalogue, and say how to renew again.
    const renewAgain = (text: unknown) => {
      expect(String(text)).toContain("«Продлить»");
      expect(String(text)).toContain("/purchases");
      expect(String(text)).not.toContain("/start");
      expect(String(text)).not.toContain("Бронь");
      expect(String(text)).toContain("звёзды не списаны");
    };
    const wrong = await tg.preCheckout(TEST_TOKEN, lea, { payload, total_amount: 149 });
    expect(wrong.params.ok).toBe(false);
    renewAgain(wrong.params.error_message);
    await running.shop.deps.sql`update orders set reserved_until = now() - interval '1 second' where id = ${order.id}`;
    const late = await tg.preCheckout(TEST_TOKEN, lea, { payload, total_amount: 150 });
    expect(late.params.ok).toBe(false);
    renewAgain(late.params.error_message);
    // «Оплатить ⭐» pressed after the window: the same answer, as an alert.
    const star = buttonsOf(payment).find((b) => b.text.includes("⭐"))!;
    const from = tg.calls.length;
    tg.pressButton(TEST_TOKEN, lea, star.callback_data!, { message_id: messageIdOf(payment) });
    const alert = await tg.waitFor((calls) =>
      calls.slice(from).find((c) => c.method === "answerCallbackQuery" && c.params.callback_query_id),
    );
    expect(alert.params.show_alert).toBe(true);
    expect(alert.params.text).toBe(late.params.error_message);
    // Paid (by AnyPay, late): a second payment in Stars is refused as an already paid renewal.
    await pay(lea, order);
    await running.shop.deps.sql`
      update orders set reserved_until = now() + interval '10 minutes' where id = ${order.id}`;
    const twice = await tg.preCheckout(TEST_TOKEN, lea, { payload, total_amount: 150 });
    expect(twice.params.ok).toBe(false);
    expect(String(twice.params.error_message)).toContain("продление уже оплачено");
    expect(String(twice.params.error_message)).toContain("/purchases");
  } finally {
    await running.shop.settings.update({ starsEnabled: false });
    await running.shop.products.setStarsPrice(productId, 30, null);
  }
});

test("an unpaid renewal expires without touching stock, and a payment arriving after that still renews the key", async () => {
  const jon = buyer(556_000_012, "Jon");
  const issued = await running.shop.keys.issue(productId, 30, jon.id);
  await running.shop.deps.sql`update keys set activated_at = now(), expires_at = now() + interval '2 days',
    hwid = 'JON-PC' where id = ${issued.id}`;
  const before = await keyRow(issued.id);
  const { order } = await renewUpToPayment(jon, 1, "7 дней • 899₽");
  const stockBefore = await stock();
  await running.shop.deps.sql`update orders set reserved_until = now() - interval '1 second' where id = ${order.id}`;
  expect(await running.shop.orders.expireDue()).toBeGreaterThanOrEqual(1);
  expect((await running.shop.orders.byId(order.id))!.status).toBe("expired");
  expect(await stock()).toBe(stockBefore);
  const [expired] = await running.shop.deps.sql<{ detail: Record<string, unknown> }[]>`
    select detail from user_events where user_id = ${jon.id} and kind = 'order_expired'`;
  expect(expired!.detail).toEqual({ orderId: order.id, renewal: true });

  // AnyPay's notification comes late: the money bought the days all the same.
  const { message } = await pay(jon, order);
  expect((await keyRow(issued.id)).expiresAt!.getTime()).toBe(before.expiresAt!.getTime() + 7 * DAY);
  expect(String(message.params.text)).toStartWith("Ключ продлён на 7 дней.");
});

test("another app process answers a renewed key's new expiry within a second (its cached answer is dropped)", async () => {
  const kim = buyer(556_000_013, "Kim");
  const issued = await running.shop.keys.issue(productId, 30, kim.id);
  await running.shop.deps.sql`update keys set activated_at = now(), expires_at = now() + interval '4 days',
    hwid = 'KIM-PC' where id = ${issued.id}`;
  // Another process, in miniature: its own licence cache, following the announcements through Redis.
  const cache = new RedisCache(production.redisUrl, production.redisPrefix);
  await cache.ready(2_000);
  const peer = createShop({ sql: running.shop.deps.sql, cache, config: running.shop.deps.config });
  const stopFollowing = await followChanges(peer);
  try {
    const ask = () => peer.licence.authenticate({ product: PRODUCT, key: issued.key, hwid: "KIM-PC", ip: null });
    const before = await ask();
    expect(before.ok).toBe(true);
    expect(peer.authCache.size).toBe(1);
    const { order } = await renewUpToPayment(kim, 1, "7 дней • 899₽");
    await pay(kim, order);
    const deadline = Date.now() + 1_000;
    for (;;) {
      const now = await ask();
      if (now.ok && before.ok && now.expiresAt.getTime() - before.expiresAt.getTime() === 7 * DAY) break;
      if (Date.now() > deadline) throw new Error("the other process still answers the old expiry after 1 s");
      await Bun.sleep(20);
    }
  } finally {
    await stopFollowing();
    await cache.close();
  }
});

test("a key of a product no longer on sale keeps «Продлить», and pressing it says renewal is unavailable", async () => {
  const lea = buyer(556_000_014, "Lea");
  const old = await running.shop.products.create({ name: "Старый товар" });
  await running.shop.products.setPrice(old.id, 7, 500);
  await running.shop.keys.generate(old.id, 7, 1);
  const issued = await running.shop.keys.issue(old.id, 7, lea.id);
  const list = await production.say(lea, "/purchases");
  expect(buttonsOf(list).map((b) => b.text)).toEqual(["🔄 Продлить №1", "« В каталог"]);

  await running.shop.products.setArchived(old.id, true);
  const fresh = await production.say(lea, "/purchases");
  // SPEC §12: the button is under every key that is not banned; the press is what says why it cannot be done.
  expect(buttonsOf(fresh).map((b) => b.text)).toEqual(["🔄 Продлить №1", "« В каталог"]);
  const pressed = await press(lea, buttonData(fresh, "🔄 Продлить №1"), fresh);
  expect(pressed.answer.params).toMatchObject({
    text: "Продление этого товара недоступно: его сейчас не продают. Если ключ нужен дольше, напишите администратору.",
    show_alert: true,
  });
  expect((await running.shop.deps.sql`select 1 from orders where key_id = ${issued.id}`).length).toBe(0);
});
