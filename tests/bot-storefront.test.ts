import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { buttonData, buttonsOf, buyer, startTestBot, type TestBot } from "./helpers/bot.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

let bot: TestBot;
let productId: number;
const alice = buyer(1001, "Alice");
const bob = buyer(1002, "Bob");

const CHOOSE = "Выберите длительность подписки:";

beforeAll(async () => {
  bot = await startTestBot();
  const { shop } = bot;
  const product = await shop.products.create({ name: "Morpheus Private", description: "Приватный чит для CS2." });
  productId = product.id;
  for (const [days, rub] of [
    [1, 299],
    [7, 899],
    [14, 999],
    [30, 1999],
    [90, 2999],
  ] as const) {
    await shop.products.setPrice(product.id, days, rub);
  }
  // Stock for every duration except 30 days.
  for (const days of [1, 7, 14, 90]) await shop.keys.generate(product.id, days, 3);

  // Not in the catalogue: no stock at all; archived.
  const empty = await shop.products.create({ name: "Нет в наличии" });
  await shop.products.setPrice(empty.id, 7, 500);
  const archived = await shop.products.create({ name: "Архивный" });
  await shop.products.setPrice(archived.id, 7, 500);
  await shop.keys.generate(archived.id, 7, 1);
  await shop.products.setArchived(archived.id, true);
});

afterAll(async () => {
  await bot.stop();
});

test("the catalogue shows one button per product on sale, and «Мои покупки»", async () => {
  const catalogue = await bot.say(alice, "/start");
  expect(catalogue.method).toBe("sendMessage");
  expect(catalogue.params.text).toBe("Выберите товар:");
  expect(buttonsOf(catalogue).map((b) => b.text)).toEqual(["Morpheus Private", "Мои покупки"]);
});

test("the product card hides the 30-day duration without stock, and shows it once keys are imported", async () => {
  const catalogue = await bot.say(alice, "/start");
  const { answer, screen } = await bot.press(alice, buttonData(catalogue, "Morpheus Private"), catalogue);
  expect(answer.params.text).toBeUndefined();
  // Edited in place, not a new message.
  expect(screen!.method).toBe("editMessageText");
  expect(screen!.params.text).toBe(`Приватный чит для CS2.\n\n${CHOOSE}`);
  expect(buttonsOf(screen!).map((b) => b.text)).toEqual([
    "1 день • 299₽",
    "7 дней • 899₽",
    "14 дней • 999₽",
    "90 дней • 2999₽",
    "« Назад",
  ]);

  const result = await bot.shop.keys.importText(productId, 30, "IMPORTED-30-A\nIMPORTED-30-B\n");
  expect(result.imported).toBe(2);
  const again = await bot.press(alice, buttonData(screen!, "« Назад"), screen!);
  expect(again.screen!.params.text).toBe("Выберите товар:");
  const card = await bot.press(alice, buttonData(again.screen!, "Morpheus Private"), again.screen!);
  expect(buttonsOf(card.screen!).map((b) => b.text)).toEqual([
    "1 день • 299₽",
    "7 дней • 899₽",
    "14 дней • 999₽",
    "30 дней • 1999₽",
    "90 дней • 2999₽",
    "« Назад",
  ]);
});

test("choosing a duration edits the card into the exact confirmation text; confirming gives the payment link", async () => {
  const catalogue = await bot.say(bob, "/start");
  const card = (await bot.press(bob, buttonData(catalogue, "Morpheus Private"), catalogue)).screen!;
  const confirm = (await bot.press(bob, buttonData(card, "7 дней • 899₽"), card)).screen!;
  expect(confirm.method).toBe("editMessageText");
  expect(confirm.params.message_id).toBe(card.params.message_id);
  expect(confirm.params.text).toBe(
    "Подтвердите покупку:\n" +
      "Morpheus Private 7 дней • 899₽.\n" +
      "После подтверждения вам предоставится страница для оплаты подписки, после успешной оплаты вы получите товар.",
  );
  expect(buttonsOf(confirm).map((b) => b.text)).toEqual(["Подтвердить", "🎟 Ввести промокод", "« Назад"]);

  const payment = (await bot.press(bob, buttonData(confirm, "Подтвердить"), confirm)).screen!;
  expect(payment.method).toBe("editMessageText");
  const [order] = await bot.sql<{ id: string; amount_rub: number; status: string; days: number }[]>`
    select id, amount_rub, status, days from orders where user_id = ${bob.id}`;
  expect(order).toMatchObject({ amount_rub: 899, status: "pending", days: 7 });
  expect(String(payment.params.text)).toStartWith(`Заказ №${order!.id}: Morpheus Private 7 дней • 899₽.`);
  const pay = buttonsOf(payment).find((b) => b.text === "Оплатить 899₽");
  expect(pay?.url).toStartWith("https://anypay.io/merchant?");
  expect(new URL(pay!.url!).searchParams.get("pay_id")).toBe(order!.id);
  // A buyer sees no test button.
  expect(buttonsOf(payment).map((b) => b.text)).not.toContain("Оплатить (тест)");
  const [reserved] = await bot.sql<{ n: string }[]>`
    select count(*) as n from keys where order_id = ${order!.id} and state = 'reserved'`;
  expect(reserved!.n).toBe("1");

  // Pressing «Подтвердить» again returns the same order instead of holding a second key.
  const again = (await bot.press(bob, buttonData(confirm, "Подтвердить"), payment)).screen!;
  expect(String(again.params.text)).toStartWith(`Заказ №${order!.id}:`);
  const [count] = await bot.sql<{ n: string }[]>`select count(*) as n from orders where user_id = ${bob.id}`;
  expect(count!.n).toBe("1");
});

test("a stale button after a price change answers with a notice and shows the fresh card", async () => {
  const catalogue = await bot.say(alice, "/start");
  const card = (await bot.press(alice, buttonData(catalogue, "Morpheus Private"), catalogue)).screen!;
  const oldButton = buttonData(card, "14 дней • 999₽");
  await bot.shop.products.setPrice(productId, 14, 1099);

  const stale = await bot.press(alice, oldButton, card);
  expect(stale.answer.params.text).toBe("Цена изменилась: теперь 1099₽.");
  expect(stale.screen!.method).toBe("editMessageText");
  expect(buttonsOf(stale.screen!).map((b) => b.text)).toContain("14 дней • 1099₽");

  // The confirmation screen went stale too: the order is not placed at the old price.
  const confirm = (await bot.press(alice, buttonData(stale.screen!, "14 дней • 1099₽"), stale.screen!)).screen!;
  await bot.shop.products.setPrice(productId, 14, 999);
  const refused = await bot.press(alice, buttonData(confirm, "Подтвердить"), confirm);
  expect(refused.answer.params.text).toBe("Цена изменилась: теперь 999₽.");
  expect(buttonsOf(refused.screen!).map((b) => b.text)).toContain("14 дней • 999₽");
  const orders = await bot.sql`select 1 from orders where user_id = ${alice.id}`;
  expect(orders.length).toBe(0);
});

test("a duration whose last key was just reserved by someone else is stale: notice, fresh card without it", async () => {
  const product = await bot.shop.products.create({ name: "Последний ключ" });
  await bot.shop.products.setPrice(product.id, 1, 100);
  await bot.shop.products.setPrice(product.id, 7, 500);
  await bot.shop.keys.generate(product.id, 1, 1);
  await bot.shop.keys.generate(product.id, 7, 1);

  const catalogue = await bot.say(alice, "/start");
  const aliceCard = (await bot.press(alice, buttonData(catalogue, "Последний ключ"), catalogue)).screen!;
  const aliceConfirm = (await bot.press(alice, buttonData(aliceCard, "1 день • 100₽"), aliceCard)).screen!;

  // Bob takes the only 1-day key first.
  const bobCatalogue = await bot.say(bob, "/start");
  const bobCard = (await bot.press(bob, buttonData(bobCatalogue, "Последний ключ"), bobCatalogue)).screen!;
  const bobConfirm = (await bot.press(bob, buttonData(bobCard, "1 день • 100₽"), bobCard)).screen!;
  await bot.press(bob, buttonData(bobConfirm, "Подтвердить"), bobConfirm);

  const late = await bot.press(alice, buttonData(aliceConfirm, "Подтвердить"), aliceConfirm);
  expect(late.answer.params.text).toBe("Ключей на 1 день сейчас нет.");
  expect(late.screen!.params.text).toBe(CHOOSE);
  expect(buttonsOf(late.screen!).map((b) => b.text)).toEqual(["7 дней • 500₽", "« Назад"]);

  // The card Alice had open still offers 1 day; pressing it is stale the same way.
  const stale = await bot.press(alice, buttonData(aliceCard, "1 день • 100₽"), aliceCard);
  expect(stale.answer.params.text).toBe("Ключей на 1 день сейчас нет.");

  // Archived: the product's buttons lead back to the catalogue with a notice.
  await bot.shop.products.setArchived(product.id, true);
  const gone = await bot.press(alice, buttonData(aliceCard, "7 дней • 500₽"), aliceCard);
  expect(gone.answer.params.text).toBe("Этот товар сейчас недоступен.");
  expect(gone.screen!.params.text).toBe("Выберите товар:");
  expect(buttonsOf(gone.screen!).map((b) => b.text)).not.toContain("Последний ключ");
});

test("«Мои покупки» lists the buyer's keys: not activated, valid until …, expired, each with «Продлить» and, once activated, «Сбросить привязку»", async () => {
  const carol = buyer(1003, "Carol");
  const empty = await bot.say(carol, "/purchases");
  expect(empty.params.text).toBe("У вас пока нет покупок.");

  const fresh = await bot.shop.keys.issue(productId, 7, carol.id);
  const active = await bot.shop.keys.issue(productId, 1, carol.id);
  const expired = await bot.shop.keys.issue(productId, 90, carol.id);
  await bot.sql`update keys set activated_at = now(), expires_at = '2031-05-06T12:30:00Z', hwid = 'PC-1'
    where id = ${active.id}`;
  await bot.sql`update keys set activated_at = now() - interval '100 days', expires_at = '2024-01-02T09:00:00Z',
    hwid = 'PC-2' where id = ${expired.id}`;

  const catalogue = await bot.say(carol, "/start");
  const list = (await bot.press(carol, buttonData(catalogue, "Мои покупки"), catalogue)).screen!;
  expect(list.method).toBe("editMessageText");
  const text = String(list.params.text);
  expect(text).toStartWith("Мои покупки:");
  expect(text).toContain(`Morpheus Private 7 дней\nКлюч: ${fresh.key}\nСтатус: не активирован`);
  expect(text).toContain(`Morpheus Private 1 день\nКлюч: ${active.key}\nСтатус: действует до 06.05.2031, 15:30 МСК`);
  expect(text).toContain(`Morpheus Private 90 дней\nКлюч: ${expired.key}\nСтатус: истёк 02.01.2024, 12:00 МСК`);
  // Newest first: the 90-day key is №1. The not activated one has nothing to reset.
  expect(buttonsOf(list).map((b) => b.text)).toEqual([
    "🔄 Продлить №1",
    "💻 Сбросить привязку №1",
    "🔄 Продлить №2",
    "💻 Сбросить привязку №2",
    "🔄 Продлить №3",
    "« В каталог",
  ]);
});

test("«Мои покупки» right after paying when no key was left shows the paid order waiting for its key, and a closed one", async () => {
  const frank = buyer(1101, "Frank");
  expect((await bot.say(frank, "/purchases")).params.text).toBe("У вас пока нет покупок.");
  // Paid while the last key went to someone else: the order is paid_no_stock and has no key yet.
  const [order] = await bot.sql<{ id: string }[]>`
    insert into orders (user_id, product_id, days, amount_rub, status, reserved_until, paid_at, provider, paid_rub)
    values (${frank.id}, ${productId}, 30, 1999, 'paid_no_stock', now(), '2030-03-04T10:05:00Z', 'anypay', 1999)
    returning id`;
  // An earlier one an admin closed without a key (refunded outside the shop).
  const [closed] = await bot.sql<{ id: string }[]>`
    insert into orders (user_id, product_id, days, amount_rub, status, reserved_until, paid_at, failure, provider,
                        paid_rub)
    values (${frank.id}, ${productId}, 1, 299, 'failed', now(), '2030-02-01T09:00:00Z', 'refunded', 'anypay', 299)
    returning id`;
  // A gift from the shop's own stock, replaced so the other tests see the same durations.
  await bot.shop.keys.generate(productId, 7, 1);
  const gift = await bot.shop.keys.issue(productId, 7, frank.id);
  await bot.sql`update keys set sold_at = '2030-03-01T10:00:00Z' where id = ${gift.id}`;

  const text = String((await bot.say(frank, "/purchases")).params.text);
  expect(text).toBe(
    [
      "Мои покупки:",
      "",
      "1. Morpheus Private 30 дней",
      `Заказ №${order!.id}, оплачен 04.03.2030, 13:05 МСК`,
      "Статус: оплачен, ключ будет выдан, как только появится",
      "",
      "2. Morpheus Private 7 дней",
      `Ключ: ${gift.key}`,
      "Статус: не активирован",
      "",
      "3. Morpheus Private 1 день",
      `Заказ №${closed!.id}, оплачен 01.02.2030, 12:00 МСК`,
      "Статус: закрыт без ключа — по вопросам оплаты напишите администратору",
    ].join("\n"),
  );
});

test("«Мои покупки» with many long imported keys and names is paged: each page fits one Telegram message", async () => {
  const erin = buyer(1102, "Erin");
  const name = "Очень длинное название товара, которое занимает все 64 символа!!";
  expect([...name].length).toBe(64);
  const product = await bot.shop.products.create({ name });
  await bot.shop.products.setPrice(product.id, 30, 1999);
  const keys = Array.from({ length: 23 }, (_, i) => `IMPORTED-${String(i).padStart(2, "0")}-${"X".repeat(116)}`);
  expect(keys[0]!.length).toBe(128);
  await bot.shop.keys.importText(product.id, 30, keys.join("\n"));
  for (let i = 0; i < 23; i++) {
    const issued = await bot.shop.keys.issue(product.id, 30, erin.id);
    // Activated and valid: the longest state line, and both buttons under every key.
    await bot.sql`update keys set activated_at = now(), expires_at = now() + interval '30 days', hwid = 'PC',
      sold_at = now() - make_interval(secs => ${i}) where id = ${issued.id}`;
  }

  const catalogue = await bot.say(erin, "/start");
  let page = (await bot.press(erin, buttonData(catalogue, "Мои покупки"), catalogue)).screen!;
  const seen: string[] = [];
  for (let n = 1; n <= 5; n++) {
    // Edited in place: the page fitted (Telegram refuses more than 4096 characters, and so does the fake).
    expect(page.method).toBe("editMessageText");
    const text = String(page.params.text);
    expect(text.length).toBeLessThanOrEqual(4096);
    expect(text).toEndWith(`Страница ${n} из 5.`);
    const shown = text.match(/Ключ: IMPORTED-\d\d-X{116}\nСтатус: действует до /g)!.length;
    expect(shown).toBe(n < 5 ? 5 : 3);
    seen.push(...text.match(/IMPORTED-\d\d/g)!);
    const labels = buttonsOf(page).map((b) => b.text);
    expect(labels.filter((l) => l.startsWith("🔄 Продлить")).length).toBe(shown);
    expect(labels.filter((l) => l.startsWith("💻 Сбросить привязку")).length).toBe(shown);
    expect(labels.includes("‹ Новее")).toBe(n > 1);
    expect(labels.includes("Старше ›")).toBe(n < 5);
    if (n < 5) page = (await bot.press(erin, buttonData(page, "Старше ›"), page)).screen!;
  }
  // Every key once, newest first, across the pages.
  expect(seen).toEqual(keys.map((k) => k.slice(0, 11)));
  const back = (await bot.press(erin, buttonData(page, "‹ Новее"), page)).screen!;
  expect(String(back.params.text)).toEndWith("Страница 4 из 5.");
  // An old page button past the end (purchases went away meanwhile) shows the last page there is.
  const past = (await bot.press(erin, "my:9", page)).screen!;
  expect(String(past.params.text)).toEndWith("Страница 5 из 5.");
});

test("an admin with test payments on gets «Оплатить (тест)», which pays through the payments port", async () => {
  const admin = buyer(2001, "Admin");
  await bot.shop.admins.add(admin.id);
  await bot.shop.settings.update({ testPayments: true });
  const catalogue = await bot.say(admin, "/start");
  expect(String(catalogue.params.text)).toStartWith("🔧 Вы администратор. Бот работает для всех.");
  const card = (await bot.press(admin, buttonData(catalogue, "Morpheus Private"), catalogue)).screen!;
  const confirm = (await bot.press(admin, buttonData(card, "1 день • 299₽"), card)).screen!;
  const payment = (await bot.press(admin, buttonData(confirm, "Подтвердить"), confirm)).screen!;
  expect(buttonsOf(payment).map((b) => b.text)).toEqual(["Оплатить 299₽", "Оплатить (тест)", "« В каталог"]);
  const [order] = await bot.sql<{ id: string }[]>`select id from orders where user_id = ${admin.id}`;

  const paid = await bot.press(admin, buttonData(payment, "Оплатить (тест)"), payment);
  expect(paid.answer.params.text).toBe("Тестовая оплата принята.");
  expect(paid.screen!.params.text).toBe(`Заказ №${order!.id} оплачен (тест). Ключ придёт в этот чат.`);
  expect(bot.payTests).toEqual([{ orderId: Number(order!.id), adminId: admin.id }]);

  // The port's refusal reaches the admin as an alert.
  bot.payTestAnswer = { ok: false, reason: "Заказ уже оплачен" };
  const refused = await bot.press(admin, buttonData(payment, "Оплатить (тест)"), payment, { screen: false });
  expect(refused.answer.params).toMatchObject({ text: "Заказ уже оплачен", show_alert: true });

  // A buyer forging the same button is refused without reaching the port.
  const forged = await bot.press(alice, buttonData(payment, "Оплатить (тест)"), payment, { screen: false });
  expect(forged.answer.params.text).toBe("Это действие доступно только администраторам.");
  expect(bot.payTests.length).toBe(2);
  await bot.shop.settings.update({ testPayments: false });
});

test("without AnyPay settings the buyer is told payments are not configured, no key is held, admins are alerted", async () => {
  await bot.shop.settings.update({ anypayMerchantId: null, anypaySecretKey: null });
  const dave = buyer(1004, "Dave");
  const catalogue = await bot.say(dave, "/start");
  const card = (await bot.press(dave, buttonData(catalogue, "Morpheus Private"), catalogue)).screen!;
  const confirm = (await bot.press(dave, buttonData(card, "7 дней • 899₽"), card)).screen!;
  const refused = (await bot.press(dave, buttonData(confirm, "Подтвердить"), confirm)).screen!;
  expect(refused.params.text).toBe(
    "Оплата пока не настроена. Мы уже сообщили администратору — попробуйте немного позже.",
  );
  expect((await bot.sql`select 1 from orders where user_id = ${dave.id}`).length).toBe(0);
  const alert = await bot.tg.waitFor((calls) =>
    calls.find((c) => Number(c.params.chat_id) === 2001 && String(c.params.text).startsWith("⚠️ Покупатель")),
  );
  expect(alert.method).toBe("sendMessage");
  await bot.shop.settings.update({ anypayMerchantId: "12345", anypaySecretKey: "anypay-secret" });
});

test("any other text opens the catalogue; an unknown button is answered and replaced by the catalogue", async () => {
  const reply = await bot.say(alice, "привет");
  expect(reply.params.text).toBe("Выберите товар:");
  const stale = await bot.press(alice, "something-old", reply);
  expect(stale.answer.params.text).toBe("Эта кнопка устарела.");
  expect(stale.screen!.params.text).toBe("Выберите товар:");
});
