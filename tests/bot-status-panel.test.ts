/**
 * The bot runtime's state as the owner sees it: the settings tab and healthz, which read it from the shop (the panel
 * never talks to the bot adapter), and what saving a token answers once Telegram has had its say.
 */
import { afterEach, expect, setDefaultTimeout, test } from "bun:test";
import { createBotRuntime } from "../src/bot/runtime.ts";
import { RedisCache } from "../src/cache/cache.ts";
import { followChanges } from "../src/shop/changes.ts";
import { createShop } from "../src/shop/index.ts";
import { checkoutOf, startTestBot, type TestBot, waitUntil } from "./helpers/bot.ts";
import { TEST_TOKEN } from "./helpers/fake-telegram.ts";
import { PanelClient } from "./helpers/panel-client.ts";

setDefaultTimeout(30_000);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function botWithPanel(options: Parameters<typeof startTestBot>[0] = {}) {
  const bot = await startTestBot(options);
  cleanups.push(() => bot.stop());
  const { password } = await bot.shop.accounts.reset("admin");
  const panel = new PanelClient(bot);
  await panel.login("admin", password);
  await panel.page("/settings");
  return { bot, panel };
}

async function health(bot: TestBot): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await bot.request("/healthz");
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const REFUSED_TOKEN = "555555555:AAH-revoked-token-00000000000000";

test("a token Telegram refuses: saving it says so next to the field, and the tab and healthz show it until a good one works", async () => {
  const { bot, panel } = await botWithPanel({ settings: false });
  expect((await health(bot)).body).toMatchObject({ ok: true, bot: "no_token" });
  expect((await panel.page("/settings")).html).toContain("токен не задан — бот не запущен.");

  const refused = await panel.post("/settings/token", { botToken: REFUSED_TOKEN, action: "save" }, { htmx: true });
  expect(refused.status).toBe(422);
  const refusedHtml = await refused.text();
  expect(refusedHtml).toContain('id="e-botToken"');
  expect(refusedHtml).toContain("Токен сохранён, но Telegram его отклонил (Telegram: 401 Unauthorized).");
  expect(refusedHtml).not.toContain("Токен сохранён и применён");
  expect(refusedHtml).not.toContain(REFUSED_TOKEN);
  // The panel did save it (the owner may fix it in @BotFather rather than here); the state says what is wrong.
  expect((await bot.shop.settings.load()).botToken).toBe(REFUSED_TOKEN);
  expect((await health(bot)).body).toMatchObject({ ok: true, bot: "invalid_token" });
  expect((await panel.page("/settings")).html).toContain("Telegram отклонил токен (Telegram: 401 Unauthorized)");

  const accepted = await panel.post("/settings/token", { botToken: TEST_TOKEN, action: "save" }, { htmx: true });
  expect(accepted.status).toBe(200);
  expect(await accepted.text()).toContain("Токен сохранён и применён: Telegram принял его, бот @morpheus_test_bot.");
  await waitUntil(() => bot.runtime.status().state === "polling", "polling");
  expect((await health(bot)).body).toMatchObject({ ok: true, bot: "polling" });
  const page = (await panel.page("/settings")).html;
  expect(page).toContain("работает — бот @morpheus_test_bot получает сообщения (long polling).");
  // Settled: the line no longer polls for changes.
  expect(page).not.toContain('hx-get="/Morpheus%20Private/settings/bot-status"');
});

test("two instances: the tab names the process that receives updates and the one in reserve; stopped, the bot is off", async () => {
  const { bot, panel } = await botWithPanel();
  const cache = new RedisCache(bot.redisUrl, bot.redisPrefix);
  const other = createShop({ sql: bot.sql, cache, config: bot.config });
  const stopFollowing = await followChanges(other);
  const standby = createBotRuntime({
    shop: other,
    checkout: checkoutOf(other, bot.config),
    config: bot.config,
    pollTimeoutS: 1,
    leaseMs: 900,
    instanceId: "second-instance",
  });
  await standby.start();
  cleanups.push(async () => {
    await standby.stop();
    await stopFollowing();
    await cache.close();
  });
  await waitUntil(() => standby.status().state === "standby", "the second instance in reserve");
  // Its report reaches the database a moment after its own state changes, and the panel reads it from there.
  await waitUntil(
    async () =>
      (await bot.shop.botStatus.current()).instances.some(
        (i) => i.instanceId === "second-instance" && i.state === "standby",
      ),
    "the second instance's report on record",
  );

  const page = (await panel.page("/settings")).html;
  expect(page).toContain("работает — бот @morpheus_test_bot получает сообщения (long polling).");
  expect(page).toMatch(/\(этот процесс\) — <span>получает сообщения<\/span>/);
  expect(page).toContain("<code>second-instance</code> — <span>в резерве: сообщения получает другой процесс</span>");
  expect((await health(bot)).body).toMatchObject({ bot: "polling" });

  await standby.stop();
  expect((await panel.page("/settings")).html).not.toContain("second-instance");
  await bot.runtime.stop();
  expect((await health(bot)).body).toMatchObject({ ok: true, bot: "off" });
  expect((await panel.page("/settings")).html).toContain("бот не запущен ни в одном процессе магазина.");
});

test("a switch post that names no position answers 422 with the reason under the switch, and changes nothing", async () => {
  const { bot, panel } = await botWithPanel();
  const before = await bot.shop.settings.load();
  const htmx = await panel.post("/settings/bot", { botEnabled: "maybe" }, { htmx: true });
  expect(htmx.status).toBe(422);
  const html = await htmx.text();
  expect(html).toContain(
    '<p class="field-error" id="e-botEnabled" role="alert">Не удалось понять, что переключить. Обновите страницу и нажмите переключатель ещё раз.</p>',
  );
  // A plain form post gets the whole page with the same message.
  const plain = await panel.post("/settings/bot", {});
  expect(plain.status).toBe(422);
  expect(await plain.text()).toContain("Не удалось понять, что переключить.");
  const after = await bot.shop.settings.load();
  expect({ enabled: after.botEnabled, maintenance: after.maintenance }).toEqual({
    enabled: before.botEnabled,
    maintenance: before.maintenance,
  });
});
