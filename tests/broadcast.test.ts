import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { createTelegramMessenger } from "../src/bot/messenger.ts";
import { RedisCache } from "../src/cache/cache.ts";
import { connectDatabase } from "../src/db/client.ts";
import { startBroadcastJob } from "../src/jobs/broadcast.ts";
import { createShop } from "../src/shop/index.ts";
import { waitUntil } from "./helpers/bot.ts";
import { FakeTelegram, type RecordedCall, TEST_TOKEN } from "./helpers/fake-telegram.ts";
import { cleanEnv, type Started, start } from "./helpers/process.ts";
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

const killAtEnd: Started[] = [];

afterAll(async () => {
  for (const p of killAtEnd) if (p.proc.exitCode === null) p.proc.kill("SIGKILL");
  await Promise.all(killAtEnd.map((p) => p.proc.exited));
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

test("1 000 users, one 429 and five 403s, the sender process killed (SIGKILL) half-way and another resuming: every reachable user gets it exactly once", async () => {
  await clearUsers();
  const users = await addUsers(100_001, 1000);
  // Away from the kill point (about the 500th message), so each of them gets its 403 answer from one sender.
  const blocked = new Set([100_101, 100_302, 100_650, 100_704, 100_905]);
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
  // From the 500th message on, Telegram holds its answers: the kill then lands with requests on their way, the one
  // moment at which a sender cannot know whether its messages arrived.
  let holding = false;
  const unhold = tg.delayAnswers((call) => (holding && call.method === "sendMessage" ? 60_000 : undefined));

  const broadcast = await t.shop.broadcasts.create({ text: "Новая версия уже в продаже!", createdBy: "test" });
  expect(broadcast.progress.total).toBe(1000);
  const sender = start(
    ["bun", "tests/helpers/broadcast-sender.ts"],
    cleanEnv({
      DATABASE_URL: t.databaseUrl,
      REDIS_URL: t.redisUrl,
      REDIS_PREFIX: t.redisPrefix,
      TELEGRAM_API_URL: tg.url,
      BOT_TOKEN: TEST_TOKEN,
      RATE: "2000",
      CONCURRENCY: "16",
      LEASE_MS: "1000",
    }),
  );
  killAtEnd.push(sender);
  await sender.waitFor(/broadcast sender started/, 20_000);
  await waitUntil(() => tg.callsOf("sendMessage").length >= 500, "half of the broadcast", 20_000);
  holding = true;
  const heldFrom = tg.calls.length;
  const held = () => tg.calls.slice(heldFrom).filter((c) => c.method === "sendMessage");
  // The sender puts out what its concurrency allows and then waits for answers that do not come.
  let seen = -1;
  while (held().length !== seen) {
    seen = held().length;
    await Bun.sleep(300);
  }
  sender.proc.kill("SIGKILL");
  await sender.proc.exited;
  const killedAt = Date.now();
  holding = false;
  unhold();

  const onTheirWay = held();
  expect(onTheirWay.length).toBeGreaterThan(0);
  expect(onTheirWay.length).toBeLessThanOrEqual(16);
  const halfway = (await t.shop.broadcasts.byId(broadcast.id))!;
  expect(halfway.status).toBe("running");
  // Every message Telegram accepted was recorded as sent the moment its answer came — none waits for a batch.
  const accepted = tg.callsOf("sendMessage").filter((c) => c.result !== undefined && !c.aborted);
  expect(halfway.progress.sent).toBe(accepted.length);
  expect(halfway.progress.failed).toBe(0);
  // Only the requests on their way are in doubt; the killed sender also held claims it had not tried yet.
  const [inDoubt] = await t.sql<{ n: string }[]>`
    select count(*) as n from broadcast_recipients
    where broadcast_id = ${broadcast.id} and status = 'pending' and attempt_started_at is not null`;
  expect(Number(inDoubt!.n)).toBe(onTheirWay.length);

  // A new process: its own database pool and Redis connection, nothing shared in memory with the killed one.
  const sql = connectDatabase(t.databaseUrl, { max: 4 });
  const cache = new RedisCache(t.redisUrl, t.redisPrefix);
  const restarted = createShop({ sql, cache, config: t.config });
  const second = startBroadcastJob({
    broadcasts: restarted.broadcasts,
    messenger: messenger(),
    ratePerSecond: 2000,
    concurrency: 16,
    claimLeaseMs: 1_000,
    idlePollMs: 50,
  });
  await waitUntil(
    async () => (await t.shop.broadcasts.byId(broadcast.id))!.status === "done",
    "the broadcast to finish",
    15_000,
    100,
  );
  // The killed sender's untried claims came back after its one-second lease, not minutes later.
  expect(Date.now() - killedAt).toBeLessThan(8_000);
  await second.stop();
  await cache.close();
  await sql.end();
  unhook();

  // Telegram acts on a request it has received in full, even if the client is gone before the answer: the
  // messages on their way at the kill reached their users.
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

  // The ones in doubt are reported as such, and were not sent a second time.
  const done = (await t.shop.broadcasts.byId(broadcast.id))!;
  expect(done.progress).toEqual({
    total: 1000,
    pending: 0,
    sent: 995 - onTheirWay.length,
    blocked: 5,
    failed: 0,
    unconfirmed: onTheirWay.length,
    cancelled: 0,
  });
  const unconfirmed = await t.sql<{ user_id: string }[]>`
    select user_id from broadcast_recipients where broadcast_id = ${broadcast.id} and status = 'unconfirmed'`;
  expect(unconfirmed.map((r) => Number(r.user_id)).sort()).toEqual(
    onTheirWay.map((c) => Number(c.params.chat_id)).sort(),
  );
  const marked = await t.sql<{ telegram_id: string }[]>`
    select telegram_id from bot_users where blocked_at is not null order by telegram_id`;
  expect(marked.map((r) => Number(r.telegram_id))).toEqual([...blocked].sort());

  // The next broadcast skips the users who blocked the bot.
  const next = await t.shop.broadcasts.create({ text: "Ещё одна новость", createdBy: "test" });
  expect(next.progress.total).toBe(995);
  await t.shop.broadcasts.cancel(next.id);
}, 60_000);

test("at the default rate the job stays within 25 messages a second, as Telegram's limit would see it", async () => {
  await clearUsers();
  await addUsers(200_001, 50);
  tg.limitRate(25);
  const before = tg.callsOf("sendMessage").length;
  const broadcast = await t.shop.broadcasts.create({ text: "Скорость", createdBy: "test" });
  const started = Date.now();
  const job = startBroadcastJob({
    broadcasts: t.shop.broadcasts,
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

test("a sender that dies mid-send leaves those recipients unconfirmed, never sent twice; its untried claims come back after the short lease", async () => {
  await clearUsers();
  await addUsers(400_001, 4);
  const broadcast = await t.shop.broadcasts.create({ text: "Сбой", createdBy: "test" });
  const claimed = await t.shop.broadcasts.claim(4, 200, "dead-sender");
  expect(claimed.length).toBe(4);
  // Two sends had started when the sender died; the other two claims were never attempted.
  expect(await t.shop.broadcasts.startAttempt(claimed[0]!)).toBe(true);
  expect(await t.shop.broadcasts.startAttempt(claimed[1]!)).toBe(true);
  expect(await t.shop.broadcasts.claim(4, 200, "next-sender")).toEqual([]);
  await Bun.sleep(300);
  const again = await t.shop.broadcasts.claim(4, 200, "next-sender");
  expect(again.map((r) => r.userId).sort()).toEqual([claimed[2]!.userId, claimed[3]!.userId].sort());
  const progress = (await t.shop.broadcasts.byId(broadcast.id))!.progress;
  expect(progress).toMatchObject({ unconfirmed: 2, pending: 2, failed: 0 });
  // The dead sender's claims are gone: even if it came back, it could not start a send for them.
  expect(await t.shop.broadcasts.startAttempt(claimed[2]!)).toBe(false);
  await t.shop.broadcasts.cancel(broadcast.id);
});

test("a broadcast whose last messages were in flight when its sender died is finished by the next sender", async () => {
  await clearUsers();
  await addUsers(400_101, 2);
  const broadcast = await t.shop.broadcasts.create({ text: "Последние", createdBy: "test" });
  const claimed = await t.shop.broadcasts.claim(2, 200, "dead-sender");
  for (const r of claimed) expect(await t.shop.broadcasts.startAttempt(r)).toBe(true);
  await Bun.sleep(300);
  // Nothing is left to send, so no batch of it reaches the sender: the claim itself must close it.
  expect(await t.shop.broadcasts.claim(4, 200, "next-sender")).toEqual([]);
  const after = (await t.shop.broadcasts.byId(broadcast.id))!;
  expect(after.status).toBe("done");
  expect(after.progress).toMatchObject({ unconfirmed: 2, pending: 0 });
});

test("a live sender keeps its claims past the lease by renewing them", async () => {
  await clearUsers();
  await addUsers(450_001, 3);
  const broadcast = await t.shop.broadcasts.create({ text: "Продление", createdBy: "test" });
  const claimed = await t.shop.broadcasts.claim(3, 300, "live-sender");
  for (let i = 0; i < 4; i++) {
    await Bun.sleep(100);
    await t.shop.broadcasts.renewClaims(claimed, 300);
  }
  expect(await t.shop.broadcasts.claim(3, 300, "other-sender")).toEqual([]);
  expect(await t.shop.broadcasts.startAttempt(claimed[0]!)).toBe(true);
  await t.shop.broadcasts.cancel(broadcast.id);
});

test("«chat not found» (400) is final for that user: tried once, counted failed, everyone else gets the message", async () => {
  await clearUsers();
  await addUsers(500_001, 20);
  const gone = 500_007;
  const unhook = tg.onCall((c) =>
    c.method === "sendMessage" && Number(c.params.chat_id) === gone
      ? { code: 400, description: "Bad Request: chat not found" }
      : undefined,
  );
  const broadcast = await t.shop.broadcasts.create({ text: "Нет чата", createdBy: "test" });
  const job = startBroadcastJob({
    broadcasts: t.shop.broadcasts,
    messenger: messenger(),
    ratePerSecond: 200,
    idlePollMs: 50,
  });
  await waitUntil(async () => (await t.shop.broadcasts.byId(broadcast.id))!.status === "done", "the broadcast");
  await job.stop();
  unhook();
  expect(tg.callsOf("sendMessage", gone).length).toBe(1);
  const done = (await t.shop.broadcasts.byId(broadcast.id))!;
  expect(done.progress).toMatchObject({ total: 20, sent: 19, failed: 1, pending: 0 });
  const [row] = await t.sql<{ last_error: string }[]>`
    select last_error from broadcast_recipients where broadcast_id = ${broadcast.id} and user_id = ${gone}`;
  expect(row!.last_error).toContain("chat not found");
});

test("a request Telegram never answers is given up on and left unconfirmed, not sent again", async () => {
  await clearUsers();
  await addUsers(600_001, 5);
  const slow = 600_003;
  const undelay = tg.delayAnswers((c) =>
    c.method === "sendMessage" && Number(c.params.chat_id) === slow ? 5_000 : undefined,
  );
  const broadcast = await t.shop.broadcasts.create({ text: "Тишина", createdBy: "test" });
  const job = startBroadcastJob({
    broadcasts: t.shop.broadcasts,
    messenger: messenger(),
    ratePerSecond: 200,
    idlePollMs: 50,
    sendTimeoutMs: 300,
  });
  await waitUntil(async () => (await t.shop.broadcasts.byId(broadcast.id))!.status === "done", "the broadcast");
  await job.stop();
  undelay();
  expect(tg.callsOf("sendMessage", slow).length).toBe(1);
  expect((await t.shop.broadcasts.byId(broadcast.id))!.progress).toMatchObject({ sent: 4, unconfirmed: 1 });
});

test("a broadcast needs a text within Telegram's 4096 characters and at least one user", async () => {
  await clearUsers();
  await expect(t.shop.broadcasts.create({ text: "   ", createdBy: "test" })).rejects.toThrow("Текст рассылки пуст");
  await expect(t.shop.broadcasts.create({ text: "я".repeat(4097), createdBy: "test" })).rejects.toThrow("4096");
  await expect(t.shop.broadcasts.create({ text: "hi", createdBy: "test" })).rejects.toThrow("Некому отправлять");
});
