import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { createTelegramMessenger } from "../src/bot/messenger.ts";
import { type BroadcastJob, startBroadcastJob } from "../src/jobs/broadcast.ts";
import { buttonData, buttonsOf, buyer, startTestBot, type TestBot, waitUntil } from "./helpers/bot.ts";
import { TEST_TOKEN } from "./helpers/fake-telegram.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

let bot: TestBot;
let job: BroadcastJob;
const admin = buyer(9001, "Admin");
const eve = buyer(3001, "Eve");
const OFF = "Бот временно отключён.";
const MAINTENANCE = "Ведутся технические работы. Попробуйте позже.";

beforeAll(async () => {
  bot = await startTestBot({ updatesPerMinute: 5 });
  await bot.shop.admins.add(admin.id);
  const product = await bot.shop.products.create({ name: "Cheat" });
  await bot.shop.products.setPrice(product.id, 7, 899);
  await bot.shop.keys.generate(product.id, 7, 2);
  job = startBroadcastJob({
    broadcasts: bot.shop.broadcasts,
    messenger: createTelegramMessenger({ telegramApiUrl: bot.tg.url, token: async () => TEST_TOKEN }),
    ratePerSecond: 1000,
    idlePollMs: 100,
  });
});

afterAll(async () => {
  await job.stop();
  await bot.stop();
});

/** Every message the bot sent to a chat so far. */
const messagesTo = (chatId: number) =>
  bot.tg.calls.filter((c) => c.method === "sendMessage" && Number(c.params.chat_id) === chatId);

test("with the bot switched off, a buyer gets only «Бот временно отключён.»; an admin gets the bot and the mode", async () => {
  await bot.shop.settings.update({ botEnabled: false });
  const reply = await bot.say(eve, "/start");
  expect(reply.params.text).toBe(OFF);
  expect(reply.params.reply_markup).toBeUndefined();
  // A button pressed from an older message gets the same text, as an alert, and nothing else.
  const press = await bot.press(eve, "p:1", reply, { screen: false });
  expect(press.answer.params).toMatchObject({ text: OFF, show_alert: true });

  const adminView = await bot.say(admin, "/start");
  expect(adminView.params.text).toBe(`🔧 Вы администратор. Бот отключён: покупатели видят «${OFF}»\n\nВыберите товар:`);
  expect(buttonsOf(adminView).map((b) => b.text)).toEqual([
    "Cheat",
    "Мои покупки",
    "📣 Рассылка",
    "🛠 Включить техработы",
  ]);
  await Bun.sleep(100);
  expect(messagesTo(eve.id).map((c) => c.params.text)).toEqual([OFF]);
  await bot.shop.settings.update({ botEnabled: true });
});

test("maintenance: buyers get «Ведутся технические работы. Попробуйте позже.»; an admin switches it from the bot", async () => {
  const adminView = await bot.say(admin, "/start");
  expect(adminView.params.text).toBe("🔧 Вы администратор. Бот работает для всех.\n\nВыберите товар:");
  const on = await bot.press(admin, buttonData(adminView, "🛠 Включить техработы"), adminView);
  expect(on.answer.params.text).toBe("Техработы включены.");
  expect((await bot.shop.settings.get()).maintenance).toBe(true);
  expect(on.screen!.params.text).toBe(
    `🔧 Вы администратор. Включены техработы: покупатели видят «${MAINTENANCE}»\n\nВыберите товар:`,
  );

  const reply = await bot.say(eve, "/start");
  expect(reply.params.text).toBe(MAINTENANCE);

  const off = await bot.press(admin, buttonData(on.screen!, "🛠 Выключить техработы"), on.screen!);
  expect(off.answer.params.text).toBe("Техработы выключены.");
  expect((await bot.shop.settings.get()).maintenance).toBe(false);
  expect((await bot.say(eve, "/start")).params.text).toBe("Выберите товар:");

  // Buyers cannot press the admin's buttons, even forged.
  const forged = await bot.press(eve, "adm:mt:1", reply, { screen: false });
  expect(forged.answer.params.text).toBe("Это действие доступно только администраторам.");
  expect((await bot.shop.settings.get()).maintenance).toBe(false);
});

test("every update records the user (names, language, last seen) and what they did, by what it means", async () => {
  const frank = { id: 3002, first_name: "Фрэнк", last_name: "Смит", username: "frank", language_code: "ru" };
  const reply = await bot.say(frank, "/start");
  await bot.press(frank, buttonData(reply, "Мои покупки"), reply);
  const [user] = await bot.sql<{ username: string; first_name: string; last_name: string; language_code: string }[]>`
    select username, first_name, last_name, language_code from bot_users where telegram_id = ${frank.id}`;
  expect(user).toEqual({ username: "frank", first_name: "Фрэнк", last_name: "Смит", language_code: "ru" });
  const events = await bot.sql<{ kind: string; detail: Record<string, unknown> }[]>`
    select kind, detail from user_events where user_id = ${frank.id} order by id`;
  expect([...events]).toEqual([
    { kind: "message", detail: { text: "/start" } },
    { kind: "purchases", detail: {} },
  ]);
});

test("one user flooding the bot is cut off after the per-minute limit; others are not affected", async () => {
  const flooder = buyer(3003, "Flood");
  for (let i = 0; i < 8; i++) bot.tg.sendText(TEST_TOKEN, flooder, `spam ${i}`);
  await waitUntil(() => messagesTo(flooder.id).length >= 5, "five answers");
  // Another user is served at once.
  expect((await bot.say(buyer(3005), "/start")).params.text).toBe("Выберите товар:");
  await Bun.sleep(300);
  expect(messagesTo(flooder.id).length).toBe(5);
  const [logged] = await bot.sql<{ n: string }[]>`select count(*) as n from user_events where user_id = ${flooder.id}`;
  expect(logged!.n).toBe("5");
});

test("an admin broadcasts from the bot: text → preview → confirm, and every user receives it once", async () => {
  const adminView = await bot.say(admin, "/start");
  const prompt = (await bot.press(admin, buttonData(adminView, "📣 Рассылка"), adminView)).screen!;
  expect(String(prompt.params.text)).toStartWith("Отправьте текст рассылки одним сообщением");

  const audience = await bot.shop.broadcasts.audience();
  const from = bot.tg.calls.length;
  bot.tg.sendText(TEST_TOKEN, admin, "  Скидка 20% на все ключи до воскресенья!  ");
  const [header, preview] = await bot.tg.waitFor((calls) => {
    const sent = calls.slice(from).filter((c) => c.method === "sendMessage" && Number(c.params.chat_id) === admin.id);
    return sent.length >= 2 ? sent : undefined;
  });
  expect(header!.params.text).toBe(`Предпросмотр рассылки. Так сообщение увидят ${audience} пользователей:`);
  expect(audience).toBe(5);
  expect(preview!.params.text).toBe("Скидка 20% на все ключи до воскресенья!");
  expect(buttonsOf(preview!).map((b) => b.text)).toEqual(["✅ Отправить", "✖️ Отмена"]);
  // Nothing is sent before the admin confirms.
  expect((await bot.shop.broadcasts.recent()).length).toBe(0);

  const sendButton = buttonData(preview!, "✅ Отправить");
  const confirmed = await bot.press(admin, sendButton, preview!);
  const [broadcast] = await bot.shop.broadcasts.recent();
  expect(broadcast!.text).toBe("Скидка 20% на все ключи до воскресенья!");
  expect(broadcast!.createdBy).toBe(`telegram:${admin.id}`);
  expect(confirmed.screen!.params.text).toBe(
    `Рассылка №${broadcast!.id} запущена: ${audience} получателей. Прогресс — в панели, вкладка «Основные настройки».`,
  );
  // A second press of the same preview does not send it again.
  const twice = await bot.press(admin, sendButton, preview!, { screen: false });
  expect(twice.answer.params.text).toBe("Этот черновик рассылки устарел. Начните заново.");

  await waitUntil(async () => (await bot.shop.broadcasts.byId(broadcast!.id))!.status === "done", "the broadcast");
  const users = await bot.sql<{ telegram_id: string }[]>`select telegram_id from bot_users`;
  for (const { telegram_id } of users) {
    // The admin's preview carries the buttons; the broadcast itself is the bare text.
    const got = messagesTo(Number(telegram_id)).filter(
      (c) => c.params.text === broadcast!.text && !c.params.reply_markup,
    );
    expect(got.length).toBe(1);
  }
  expect((await bot.shop.broadcasts.recent()).length).toBe(1);
});

test("a broadcast draft can be cancelled, and /cancel leaves the text prompt", async () => {
  const adminView = await bot.say(admin, "/start");
  await bot.press(admin, buttonData(adminView, "📣 Рассылка"), adminView);
  expect((await bot.say(admin, "/cancel")).params.text).toBe("Рассылка отменена.");
  // The next text is a normal message again.
  expect(String((await bot.say(admin, "hello")).params.text)).toContain("Выберите товар:");
  // Any other command also leaves the prompt, and does what it says.
  await bot.press(admin, buttonData(adminView, "📣 Рассылка"), adminView);
  expect(String((await bot.say(admin, "/start")).params.text)).toContain("Выберите товар:");
  expect(String((await bot.say(admin, "not a broadcast")).params.text)).toContain("Выберите товар:");

  await bot.press(admin, buttonData(adminView, "📣 Рассылка"), adminView);
  const from = bot.tg.calls.length;
  bot.tg.sendText(TEST_TOKEN, admin, "Не отправлять");
  const preview = await bot.tg.waitFor((calls) =>
    calls.slice(from).find((c) => c.method === "sendMessage" && c.params.text === "Не отправлять"),
  );
  const cancelled = await bot.press(admin, buttonData(preview, "✖️ Отмена"), preview, { screen: false });
  expect(cancelled.answer.params.text).toBe("Рассылка отменена.");
  expect((await bot.shop.broadcasts.recent()).map((b) => b.text)).not.toContain("Не отправлять");
});

test("a user who blocks the bot is marked blocked; writing again clears it", async () => {
  const grace = buyer(3004, "Grace");
  await bot.say(grace, "/start");
  const member = (status: string) => ({
    my_chat_member: {
      chat: { id: grace.id, type: "private", first_name: grace.first_name },
      from: { is_bot: false, ...grace },
      date: Math.floor(Date.now() / 1000),
      old_chat_member: { status: "member", user: { id: 1, is_bot: true, first_name: "Bot" } },
      new_chat_member: { status, user: { id: 1, is_bot: true, first_name: "Bot" }, until_date: 0 },
    },
  });
  bot.tg.pushUpdate(TEST_TOKEN, member("kicked"));
  await waitUntil(async () => (await bot.shop.users.byId(grace.id))?.blockedAt != null, "blocked_at");
  await bot.say(grace, "/start");
  expect((await bot.shop.users.byId(grace.id))?.blockedAt).toBeNull();
});
