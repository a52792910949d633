import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { createTelegramMessenger } from "../src/bot/messenger.ts";
import { RedisCache } from "../src/cache/cache.ts";
import { connectDatabase } from "../src/db/client.ts";
import { startBroadcastJob } from "../src/jobs/broadcast.ts";
import { createShop } from "../src/shop/index.ts";
import { waitUntil } from "./helpers/bot.ts";
import { FakeTelegram, type RecordedCall, TEST_TOKEN } from "./helpers/fake-telegram.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

let t: TestShop;
let tg: FakeTelegram;

beforeAll(async () => {
  tg = new FakeTelegram([TEST_TOKEN]).start();
  t = await createTestShop({ telegramApiUrl: tg.url });
});

afterAll(async () => {
  await tg.stop();
  await t.close();
});

const messenger = () => createTelegramMessenger({ telegramApiUrl: tg.url, token: async () => TEST_TOKEN });

async function addUsers(from: number, count: number): Promise<number[]> {
  await t.sql`
    insert into bot_users (telegram_id, first_name)
    select g, 'User ' || g from generate_series(${from}::bigint, ${from + count - 1}::bigint) g`;
  return Array.from({ length: count }, (_, i) => from + i);
}

async function clearUsers(): Promise<void> {
  await t.sql`delete from broadcasts`;
  await t.sql`delete from bot_users`;
}

test("1 000 users, one 429 and five 403s, the job killed half-way and restarted: every reachable user gets it once", async () => {
  await clearUsers();
  const users = await addUsers(100_001, 1000);
  const blocked = new Set([100_101, 100_302, 100_503, 100_704, 100_905]);
  const failedCalls = new Set<RecordedCall>();
  let sends = 0;
  let rateLimitedAt = 0;
  let rateLimitedUser = 0;
  const unhook = tg.onCall((call) => {
    if (call.method !== "sendMessage") return undefined;
    sends++;
    const chat = Number(call.params.chat_id);
    if (blocked.has(chat)) {
      failedCalls.add(call);
      return { code: 403, description: "Forbidden: bot was blocked by the user" };
    }
    if (sends === 250) {
      failedCalls.add(call);
      rateLimitedAt = call.at;
      rateLimitedUser = chat;
      return { code: 429, description: "Too Many Requests: retry after 1", retryAfter: 1 };
    }
    return undefined;
  });

  const broadcast = await t.shop.broadcasts.create({ text: "Новая версия уже в продаже!", createdBy: "test" });
  expect(broadcast.progress.total).toBe(1000);
  const first = startBroadcastJob({
    broadcasts: t.shop.broadcasts,
    cache: t.cache,
    messenger: messenger(),
    ratePerSecond: 2000,
    concurrency: 16,
    idlePollMs: 50,
  });
  await waitUntil(() => tg.callsOf("sendMessage").length >= 500, "half of the broadcast", 15_000);
  await first.stop();
  const halfway = (await t.shop.broadcasts.byId(broadcast.id))!;
  expect(halfway.status).toBe("running");
  expect(halfway.progress.pending).toBeGreaterThan(0);
  expect(halfway.progress.sent).toBeLessThan(1000);

  // A new process: its own database pool and Redis connection, nothing shared in memory with the first job.
  const sql = connectDatabase(t.databaseUrl, { max: 4 });
  const cache = new RedisCache(t.redisUrl, t.redisPrefix);
  const restarted = createShop({ sql, cache, config: t.config });
  const second = startBroadcastJob({
    broadcasts: restarted.broadcasts,
    cache,
    messenger: messenger(),
    ratePerSecond: 2000,
    concurrency: 16,
    idlePollMs: 50,
  });
  await waitUntil(
    async () => (await t.shop.broadcasts.byId(broadcast.id))!.status === "done",
    "the broadcast to finish",
    15_000,
    100,
  );
  await second.stop();
  await cache.close();
  await sql.end();
  unhook();

  const delivered = new Map<number, number>();
  for (const call of tg.callsOf("sendMessage")) {
    if (failedCalls.has(call)) continue;
    const chat = Number(call.params.chat_id);
    delivered.set(chat, (delivered.get(chat) ?? 0) + 1);
  }
  for (const user of users) expect(delivered.get(user) ?? 0).toBe(blocked.has(user) ? 0 : 1);
  // Blocked users were tried once and never again; the rate-limited one twice.
  for (const user of blocked) expect(tg.callsOf("sendMessage", user).length).toBe(1);
  expect(tg.callsOf("sendMessage", rateLimitedUser).length).toBe(2);
  // retry_after was honoured: nothing was sent during the second after the 429.
  const during = tg.callsOf("sendMessage").filter((c) => c.at > rateLimitedAt + 100 && c.at < rateLimitedAt + 900);
  expect(during.length).toBe(0);

  const done = (await t.shop.broadcasts.byId(broadcast.id))!;
  expect(done.progress).toEqual({ total: 1000, pending: 0, sent: 995, blocked: 5, failed: 0, cancelled: 0 });
  const marked = await t.sql<{ telegram_id: string }[]>`
    select telegram_id from bot_users where blocked_at is not null order by telegram_id`;
  expect(marked.map((r) => Number(r.telegram_id))).toEqual([...blocked].sort());

  // The next broadcast skips the users who blocked the bot.
  const next = await t.shop.broadcasts.create({ text: "Ещё одна новость", createdBy: "test" });
  expect(next.progress.total).toBe(995);
  await t.shop.broadcasts.cancel(next.id);
}, 20_000);

test("at the default rate the job stays within 25 messages a second, as Telegram's limit would see it", async () => {
  await clearUsers();
  await addUsers(200_001, 50);
  tg.limitRate(25);
  const before = tg.callsOf("sendMessage").length;
  const broadcast = await t.shop.broadcasts.create({ text: "Скорость", createdBy: "test" });
  const started = Date.now();
  const job = startBroadcastJob({
    broadcasts: t.shop.broadcasts,
    cache: t.cache,
    messenger: messenger(),
    idlePollMs: 50,
  });
  await waitUntil(
    async () => (await t.shop.broadcasts.byId(broadcast.id))!.status === "done",
    "the broadcast",
    10_000,
    50,
  );
  const elapsed = Date.now() - started;
  await job.stop();
  tg.limitRate(null);
  expect(tg.rateLimited).toBe(0);
  expect(tg.callsOf("sendMessage").length - before).toBe(50);
  // 50 messages at 25/s cannot take less than 49 intervals of 40 ms.
  expect(elapsed).toBeGreaterThanOrEqual(49 * 40);
}, 10_000);

test("cancelling a broadcast stops it: nobody else is messaged", async () => {
  await clearUsers();
  await addUsers(300_001, 200);
  const broadcast = await t.shop.broadcasts.create({ text: "Отмена", createdBy: "test" });
  const job = startBroadcastJob({
    broadcasts: t.shop.broadcasts,
    cache: t.cache,
    messenger: messenger(),
    ratePerSecond: 100,
    idlePollMs: 50,
  });
  await waitUntil(() => tg.calls.filter((c) => c.params.text === "Отмена").length >= 20, "some messages");
  const cancelled = await t.shop.broadcasts.cancel(broadcast.id);
  expect(cancelled.status).toBe("cancelled");
  const sentAtCancel = tg.calls.filter((c) => c.params.text === "Отмена").length;
  await Bun.sleep(500);
  await job.stop();
  const sent = tg.calls.filter((c) => c.params.text === "Отмена").length;
  // Messages already on their way may land; nothing new starts.
  expect(sent - sentAtCancel).toBeLessThanOrEqual(8);
  const final = (await t.shop.broadcasts.byId(broadcast.id))!;
  expect(final.progress.sent).toBe(sent);
  expect(final.progress.sent + final.progress.cancelled).toBe(200);
});

test("a worker that dies mid-send leaves its recipient failed, never sent twice; unsent claims come back", async () => {
  await clearUsers();
  await addUsers(400_001, 4);
  const broadcast = await t.shop.broadcasts.create({ text: "Сбой", createdBy: "test" });
  const claimed = await t.shop.broadcasts.claim(4, 200);
  expect(claimed.length).toBe(4);
  // Two sends had started when the worker died; the other two claims were never attempted.
  await t.shop.broadcasts.startAttempt(claimed[0]!);
  await t.shop.broadcasts.startAttempt(claimed[1]!);
  expect(await t.shop.broadcasts.claim(4, 200)).toEqual([]);
  await Bun.sleep(300);
  const again = await t.shop.broadcasts.claim(4, 200);
  expect(again.map((r) => r.userId).sort()).toEqual([claimed[2]!.userId, claimed[3]!.userId].sort());
  const progress = (await t.shop.broadcasts.byId(broadcast.id))!.progress;
  expect(progress).toMatchObject({ failed: 2, pending: 2 });
});

test("a broadcast needs a text within Telegram's 4096 characters and at least one user", async () => {
  await clearUsers();
  await expect(t.shop.broadcasts.create({ text: "   ", createdBy: "test" })).rejects.toThrow("Текст рассылки пуст");
  await expect(t.shop.broadcasts.create({ text: "я".repeat(4097), createdBy: "test" })).rejects.toThrow("4096");
  await expect(t.shop.broadcasts.create({ text: "hi", createdBy: "test" })).rejects.toThrow("Некому отправлять");
});
