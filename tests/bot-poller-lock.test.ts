/**
 * "Exactly one instance polls, whether or not Redis is up, and the lock passes on when that instance dies" — with
 * real processes: two shops run as `bun src/main.ts` against one database, with Redis unreachable from the start;
 * the one that polls is killed with SIGKILL (no cleanup at all), and the other takes over.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { createBotRuntime } from "../src/bot/runtime.ts";
import { RedisCache } from "../src/cache/cache.ts";
import { followChanges } from "../src/shop/changes.ts";
import { createShop } from "../src/shop/index.ts";
import { buyer, checkoutOf, waitUntil } from "./helpers/bot.ts";
import { FakeTelegram, TEST_TOKEN } from "./helpers/fake-telegram.ts";
import { type Started, shopProcesses } from "./helpers/process.ts";
import { freePort } from "./helpers/servers.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

setDefaultTimeout(90_000);

const DEAD_REDIS = "redis://127.0.0.1:1";
const EMPTY_CATALOGUE = "Сейчас товаров в наличии нет. Загляните позже.";

let t: TestShop;
let tg: FakeTelegram;

beforeAll(async () => {
  tg = new FakeTelegram([TEST_TOKEN]).start();
  t = await createTestShop({ telegramApiUrl: tg.url });
  await t.shop.settings.update({ botToken: TEST_TOKEN, botEnabled: true });
});

afterAll(async () => {
  await shops.killAll();
  await t.close();
  await tg.stop();
});

const shops = shopProcesses(() => ({
  DATABASE_URL: t.databaseUrl,
  REDIS_URL: DEAD_REDIS,
  SESSION_SECRET: "poller-lock-test-session-secret-0123456789",
  TELEGRAM_API_URL: tg.url,
  DATA_DIR: t.config.dataDir,
}));
const shopProcess = (port: number): Started => shops.start(port);

const POLLS = /this instance receives the bot's updates/;
const polls = (p: Started) => [...p.stdout, ...p.stderr].some((line) => POLLS.test(line));

/** A buyer writes; resolves with the bot's answer. */
async function reply(userId: number): Promise<string> {
  const from = tg.calls.length;
  tg.sendText(TEST_TOKEN, buyer(userId), "/start");
  const answer = await tg.waitFor(
    (calls) => calls.slice(from).find((c) => c.method === "sendMessage" && Number(c.params.chat_id) === userId),
    15_000,
  );
  return String(answer.params.text);
}

test("with Redis unreachable, of two shop processes exactly one polls; killed with SIGKILL, the other takes over", async () => {
  const ports = [freePort(), freePort()];
  const [a, b] = [shopProcess(ports[0]!), shopProcess(ports[1]!)];
  await Promise.all([a.waitFor(/http listening/, 30_000), b.waitFor(/http listening/, 30_000)]);
  await waitUntil(() => polls(a) || polls(b), "one of them to poll", 15_000);
  // Give the other one time to get it wrong (it checked the lock at its start, and polls would follow at once).
  await Bun.sleep(1_500);
  expect([polls(a), polls(b)].filter(Boolean).length).toBe(1);
  const [poller, standby, standbyPort] = polls(a) ? [a, b, ports[1]!] : [b, a, ports[0]!];
  expect(await reply(9_001)).toBe(EMPTY_CATALOGUE);
  expect(tg.callsOf("sendMessage", 9_001).length).toBe(1);
  // Telegram answers a second concurrent getUpdates with 409: there was none.
  expect(tg.conflicts).toBe(0);
  const health = await fetch(`http://127.0.0.1:${standbyPort}/Morpheus%20Private/healthz`).then((r) => r.json());
  expect(health).toEqual({ ok: true, postgres: "ok", redis: "down", bot: "polling" });

  poller.proc.kill("SIGKILL");
  await poller.proc.exited;
  // The lock went with the killed process's connection: the other takes it at its next check (every 5 s).
  await standby.waitFor(POLLS, 15_000);
  expect(await reply(9_002)).toBe(EMPTY_CATALOGUE);
  expect(tg.callsOf("sendMessage", 9_002).length).toBe(1);
  expect(tg.conflicts).toBe(0);

  standby.proc.kill("SIGTERM");
  expect(await standby.proc.exited).toBe(0);
});

test("a single instance with Redis unreachable from the start polls and answers", async () => {
  const cache = new RedisCache(DEAD_REDIS, "unused:");
  const shop = createShop({ sql: t.sql, cache, config: t.config });
  const stopFollowing = await followChanges(shop);
  const runtime = createBotRuntime({
    shop,
    checkout: checkoutOf(shop, t.config),
    config: t.config,
    pollTimeoutS: 1,
    leaseMs: 900,
  });
  try {
    await runtime.start();
    await waitUntil(() => runtime.status().state === "polling", "polling", 5_000);
    expect(await reply(9_003)).toBe(EMPTY_CATALOGUE);
  } finally {
    await runtime.stop();
    await stopFollowing();
    await cache.close();
  }
});
