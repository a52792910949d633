import { afterEach, expect, setDefaultTimeout, test } from "bun:test";
import { createBotRuntime, webhookSecret } from "../src/bot/runtime.ts";
import { RedisCache } from "../src/cache/cache.ts";
import { buildHttpApp } from "../src/server.ts";
import { followChanges } from "../src/shop/changes.ts";
import { createShop } from "../src/shop/index.ts";
import { buyer, checkoutOf, startTestBot, type TestBot, waitUntil } from "./helpers/bot.ts";
import { OTHER_TOKEN, TEST_TOKEN } from "./helpers/fake-telegram.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function testBot(options: Parameters<typeof startTestBot>[0] = {}): Promise<TestBot> {
  const bot = await startTestBot(options);
  cleanups.push(() => bot.stop());
  return bot;
}

/** Another process on the same database and Redis: what the CLI, the panel or a second instance would be. */
async function otherProcess(bot: TestBot) {
  const cache = new RedisCache(bot.redisUrl, bot.redisPrefix);
  const shop = createShop({ sql: bot.sql, cache, config: bot.config });
  const stopFollowing = await followChanges(shop);
  const close = async () => {
    await stopFollowing();
    await cache.close();
  };
  cleanups.unshift(close);
  return { shop, cache };
}

const repliesTo = (bot: TestBot, chatId: number) =>
  bot.tg.calls.filter((c) => c.method === "sendMessage" && Number(c.params.chat_id) === chatId);

test("a token saved in another process makes the running bot poll with the new token", async () => {
  const bot = await testBot();
  bot.tg.addToken(OTHER_TOKEN);
  const ann = buyer(4001);
  expect((await bot.say(ann, "/start")).token).toBe(TEST_TOKEN);

  const cli = await otherProcess(bot);
  await cli.shop.settings.update({ botToken: OTHER_TOKEN });
  await waitUntil(() => bot.tg.polls.some((p) => p.token === OTHER_TOKEN), "a poll with the new token");
  const switchedAt = Date.now();

  const from = bot.tg.calls.length;
  bot.tg.sendText(OTHER_TOKEN, ann, "/start");
  const reply = await bot.tg.waitFor((calls) => calls.slice(from).find((c) => c.method === "sendMessage"));
  expect(reply.token).toBe(OTHER_TOKEN);
  expect(reply.params.text).toBe("Сейчас товаров в наличии нет. Загляните позже.");
  // The old token is not polled any more (a request already in flight may land just after the switch).
  await Bun.sleep(300);
  expect(bot.tg.polls.filter((p) => p.token === TEST_TOKEN && p.at > switchedAt + 50).length).toBe(0);
  expect(bot.runtime.status()).toMatchObject({ state: "polling", username: "morpheus_test_bot" });
});

test("a regenerated token (same bot) takes over without dropping or repeating an update", async () => {
  const bot = await testBot();
  const newToken = "123456789:AAH-regenerated-token-000000000000";
  bot.tg.addToken(newToken);
  const users = [buyer(4101), buyer(4102), buyer(4103), buyer(4104)];

  // Updates keep arriving while the token changes hands.
  bot.tg.sendText(TEST_TOKEN, users[0]!, "/start");
  await waitUntil(() => repliesTo(bot, users[0]!.id).length === 1, "the first reply");
  bot.tg.sendText(TEST_TOKEN, users[1]!, "/start");
  const change = bot.shop.settings.update({ botToken: newToken });
  bot.tg.sendText(TEST_TOKEN, users[2]!, "/start");
  await change;
  bot.tg.revokeToken(TEST_TOKEN);
  bot.tg.sendText(newToken, users[3]!, "/start");

  for (const user of users) await waitUntil(() => repliesTo(bot, user.id).length >= 1, `a reply to ${user.id}`);
  await Bun.sleep(300);
  for (const user of users) expect(repliesTo(bot, user.id).length).toBe(1);
  expect(repliesTo(bot, users[3]!.id)[0]!.token).toBe(newToken);
});

test("a token Telegram refuses is reported, not fatal; a good token then starts the bot", async () => {
  const bot = await testBot({ settings: false });
  expect(bot.runtime.status().state).toBe("no_token");
  await bot.shop.settings.update({ botToken: "555555555:AAH-revoked-token-00000000000000", botEnabled: true });
  await waitUntil(() => bot.runtime.status().state === "invalid_token", "invalid_token");
  expect(bot.runtime.status().error).toContain("401");

  await bot.shop.settings.update({ botToken: TEST_TOKEN });
  await waitUntil(() => bot.runtime.status().state === "polling", "polling");
  expect((await bot.say(buyer(4201), "/start")).params.text).toBe("Сейчас товаров в наличии нет. Загляните позже.");
});

test("with two instances exactly one polls; when it dies the other takes over", async () => {
  const bot = await testBot();
  const second = await otherProcess(bot);
  const checkout = checkoutOf(second.shop, bot.config);
  const standby = createBotRuntime({ shop: second.shop, checkout, config: bot.config, pollTimeoutS: 1, leaseMs: 900 });
  await standby.start();
  cleanups.unshift(() => standby.stop());

  await Bun.sleep(1_000);
  expect(bot.runtime.status().state).toBe("polling");
  expect(standby.status().state).toBe("standby");
  // Both instances say so to the rest of the shop; the shop as a whole receives its updates.
  const seen = await second.shop.botStatus.current();
  expect(seen.state).toBe("polling");
  expect(seen.instances.map((i) => i.state).sort()).toEqual(["polling", "standby"]);
  // Telegram would answer 409 to a second poller; none happened.
  expect(bot.tg.conflicts).toBe(0);
  expect((await bot.say(buyer(4301), "/start")).params.text).toBeDefined();

  // The polling instance dies without giving the lease back.
  await bot.runtime.stop({ release: false });
  await waitUntil(() => standby.status().state === "polling", "the standby to take over", 5_000);
  const reply = await bot.say(buyer(4302), "/start");
  expect(reply.params.text).toBe("Сейчас товаров в наличии нет. Загляните позже.");
  expect(bot.tg.conflicts).toBe(0);
});

test("webhook mode: the webhook is registered with a secret, and only requests carrying it are handled", async () => {
  const webhookUrl = "https://shop.example.com/Morpheus%20Private/telegram/webhook";
  const bot = await testBot({ config: { botWebhookUrl: webhookUrl } });
  const secret = webhookSecret(bot.config)!;
  await waitUntil(() => bot.runtime.status().state === "webhook", "webhook mode");
  const registered = bot.tg.callsOf("setWebhook")[0]!;
  expect(registered.params).toMatchObject({ url: webhookUrl, secret_token: secret });
  expect(bot.tg.polls.length).toBe(0);

  const update = {
    update_id: 77,
    message: {
      message_id: 1,
      date: Math.floor(Date.now() / 1000),
      chat: { id: 4401, type: "private", first_name: "Web" },
      from: { id: 4401, is_bot: false, first_name: "Web" },
      text: "/start",
      entities: [{ type: "bot_command", offset: 0, length: 6 }],
    },
  };
  // The shop's own HTTP app, as runShop builds it, with the webhook route of BOT_WEBHOOK_URL's path.
  const app = buildHttpApp(bot.shop, bot.config, { telegramWebhook: (request) => bot.runtime.handleWebhook(request) });
  const post = (headers: Record<string, string>, body: string) =>
    app.handle(
      new Request("http://localhost/Morpheus%20Private/telegram/webhook", {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body,
      }),
    );
  expect((await post({}, JSON.stringify(update))).status).toBe(401);
  expect((await post({ "x-telegram-bot-api-secret-token": "wrong" }, JSON.stringify(update))).status).toBe(401);
  expect((await post({ "x-telegram-bot-api-secret-token": secret }, "{not json")).status).toBe(400);
  expect(repliesTo(bot, 4401).length).toBe(0);

  const ok = await post({ "x-telegram-bot-api-secret-token": secret }, JSON.stringify(update));
  expect(ok.status).toBe(200);
  expect(repliesTo(bot, 4401).map((c) => c.params.text)).toEqual(["Сейчас товаров в наличии нет. Загляните позже."]);

  // The token is revoked while an update is being answered: not a 200, so Telegram delivers the update again.
  bot.tg.revokeToken(TEST_TOKEN);
  const again = { ...update, update_id: 78 };
  const refused = await post({ "x-telegram-bot-api-secret-token": secret }, JSON.stringify(again));
  expect(refused.status).toBe(503);
});
