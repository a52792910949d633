import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, spyOn, test } from "bun:test";
import { createHash } from "node:crypto";
import { createTelegramMessenger } from "../src/bot/messenger.ts";
import { RedisCache } from "../src/cache/cache.ts";
import { connectDatabase } from "../src/db/client.ts";
import { backoff, startDeliveryJob } from "../src/jobs/delivery.ts";
import { createShop } from "../src/shop/index.ts";
import { TEST_TOKEN } from "./helpers/fake-telegram.ts";
import { ADMIN_ID, BUILD_ZIP, createPayShop, type PayShop } from "./helpers/payments.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

let s: PayShop;
let product: { id: number; keys: string[] };
let plain: { id: number; keys: string[] };
let nextBuyer = 300_000;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  // No job by default: each test starts the one it needs, so a test can also show what happens without one.
  s = await createPayShop({ job: false });
  product = await s.product("Morpheus", { keys: 30 });
  plain = await s.product("Plain", { keys: 5, build: false });
}, 20_000);
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
}, 20_000);
afterAll(async () => {
  await s.stop();
}, 20_000);

const seen = (text: unknown) => String(text).replaceAll("\r", "");

async function paidOrder(productId = product.id) {
  const buyer = await s.buyer(nextBuyer++);
  const order = await s.placeOrder(buyer, productId);
  expect((await s.notifier.send(s.notifier.paid(order))).body).toBe("OK");
  return order;
}

function job(options: Parameters<PayShop["startJob"]>[0] = {}) {
  const j = s.startJob(options);
  cleanups.push(() => j.stop());
  return j;
}

function quietLogs() {
  const spies = [
    spyOn(console, "error").mockImplementation(() => {}),
    spyOn(console, "log").mockImplementation(() => {}),
  ];
  cleanups.push(() => {
    for (const spy of spies) spy.mockRestore();
  });
}

describe("delivery survives the process", () => {
  test("paid but not delivered when the process dies: a fresh process delivers it once, and a third does nothing", async () => {
    const order = await paidOrder();
    expect((await s.shop.orders.byId(order.id))?.status).toBe("paid");
    const [pending] = await s.sql`select status from deliveries where order_id = ${order.id}`;
    expect(pending!.status).toBe("pending");
    expect(s.tg.callsOf("sendDocument", order.userId)).toHaveLength(0);

    // A new process: its own connections, its own shop, its own job — only the database is shared.
    async function freshProcess() {
      const sql = connectDatabase(s.databaseUrl, { max: 4 });
      const cache = new RedisCache(s.redisUrl, s.redisPrefix);
      const shop = createShop({ sql, cache, config: s.config });
      const messenger = createTelegramMessenger({ telegramApiUrl: s.tg.url, token: async () => TEST_TOKEN });
      const j = startDeliveryJob(shop, messenger, { pollMs: 50 });
      return async () => {
        await j.stop();
        await cache.close();
        await sql.end({ timeout: 1 });
      };
    }
    const stopSecond = await freshProcess();
    await s.delivered(order.id);
    await stopSecond();
    const stopThird = await freshProcess();
    await Bun.sleep(300);
    await stopThird();

    const docs = s.tg.callsOf("sendDocument", order.userId);
    expect(docs).toHaveLength(1);
    expect(seen(docs[0]!.params.caption)).toStartWith("Ключ: MPH-");
    expect((await s.shop.orders.byId(order.id))?.status).toBe("delivered");
  });

  test("a delivery claimed by a process that died mid-send is sent once its lease runs out", async () => {
    const order = await paidOrder();
    const claimed = await s.shop.deliveries.claimDue(10, 2_000);
    const claimedAt = Date.now();
    expect(claimed.map((c) => c.orderId)).toContain(order.id);
    // The claimant is gone; a live job must not touch the delivery before the lease ends, then send it once.
    job();
    await Bun.sleep(300);
    expect(s.tg.callsOf("sendDocument", order.userId)).toHaveLength(0);
    await s.delivered(order.id, 6_000);
    // Measured, not slept: a loaded machine may stretch the sleep above, never shorten the lease.
    expect(s.tg.callsOf("sendDocument", order.userId)[0]!.at - claimedAt).toBeGreaterThanOrEqual(1_900);
    expect(s.tg.callsOf("sendDocument", order.userId)).toHaveLength(1);
  });
});

describe("what the buyer receives", () => {
  test("without a build, the same text as a plain message", async () => {
    job();
    const order = await paidOrder(plain.id);
    await s.delivered(order.id);
    const [message] = s.tg.callsOf("sendMessage", order.userId);
    expect(message!.params.text).toMatch(
      /^Ключ: MPH-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}\nТовар: Plain 30 дней\nСпасибо за покупку!$/,
    );
    expect(s.tg.callsOf("sendDocument", order.userId)).toHaveLength(0);
  });

  test("buyers paying together while the zip is not on Telegram yet: one upload, the rest by file_id", async () => {
    const fresh = await s.product("Fresh", { keys: 5 });
    job({ concurrency: 5 });
    const orders = await Promise.all(Array.from({ length: 5 }, () => paidOrder(fresh.id)));
    await Promise.all(orders.map((o) => s.delivered(o.id)));
    const docs = orders.flatMap((o) => s.tg.callsOf("sendDocument", o.userId));
    expect(docs).toHaveLength(5);
    expect(docs.filter((d) => d.files.document)).toHaveLength(1);
    const fileId = (await s.shop.products.byId(fresh.id))?.build?.fileId;
    expect(docs.filter((d) => d.params.document === fileId)).toHaveLength(4);
  });

  test("a build replaced after the delivery was claimed: the buyer gets the new zip, not the key alone", async () => {
    quietLogs();
    const swapped = await s.product("Swapped", { keys: 2 });
    const newZip = new Uint8Array([...BUILD_ZIP, ...new TextEncoder().encode(" v2")]);
    const order = await paidOrder(swapped.id);
    // The admin uploads a new build right after the job claimed the delivery (with the old build's path): the old
    // file is removed once the new one is recorded, before this delivery reaches it.
    const claimDue = s.shop.deliveries.claimDue;
    const spy = spyOn(s.shop.deliveries, "claimDue").mockImplementation(async (...args) => {
      const batch = await claimDue(...args);
      if (batch.some((w) => w.orderId === order.id)) await s.shop.builds.store(swapped.id, newZip, "loader-v2.zip");
      return batch;
    });
    cleanups.push(() => spy.mockRestore());
    job();
    await s.delivered(order.id);
    const docs = s.tg.callsOf("sendDocument", order.userId);
    expect(docs).toHaveLength(1);
    expect(docs[0]!.files.document?.sha256).toBe(createHash("sha256").update(newZip).digest("hex"));
    expect(seen(docs[0]!.params.caption)).toStartWith("Ключ: MPH-");
    expect(s.tg.callsOf("sendMessage", order.userId)).toHaveLength(0);
  });

  test("a file_id Telegram refuses is replaced by a new upload", async () => {
    quietLogs();
    await s.sql`update products set build_file_id = 'doc_from_another_bot' where id = ${product.id}`;
    job();
    const order = await paidOrder();
    await s.delivered(order.id);
    const docs = s.tg.callsOf("sendDocument", order.userId);
    expect(docs.map((d) => (d.files.document ? "upload" : d.params.document))).toEqual([
      "doc_from_another_bot",
      "upload",
    ]);
    expect((await s.shop.products.byId(product.id))?.build?.fileId).toStartWith("doc_");
    expect((await s.shop.products.byId(product.id))?.build?.fileId).not.toBe("doc_from_another_bot");
  });
});

describe("when Telegram says no", () => {
  test("403: the delivery and the buyer are marked blocked, admins are told, and it resumes when the buyer returns", async () => {
    quietLogs();
    const buyer = nextBuyer;
    const off = s.tg.onCall((c) =>
      Number(c.params.chat_id) === buyer
        ? { code: 403, description: "Forbidden: bot was blocked by the user" }
        : undefined,
    );
    job({ requeueBlockedEveryMs: 50 });
    const order = await paidOrder();
    expect(order.userId).toBe(buyer);
    const alert = await s.tg.waitFor((calls) =>
      calls.find((c) => Number(c.params.chat_id) === ADMIN_ID && String(c.params.text).includes("заблокировал бота")),
    );
    expect(String(alert.params.text)).toContain(`заказ №${order.id} «Morpheus 30 дней» оплачен, но не доставлен`);
    expect(await s.shop.deliveries.byOrder(order.id)).toMatchObject({ status: "blocked" });
    expect((await s.shop.users.byId(buyer))?.blockedAt).toBeInstanceOf(Date);
    expect((await s.shop.orders.byId(order.id))?.status).toBe("paid");
    expect((await s.shop.deliveries.needingAttention()).map((d) => d.orderId)).toContain(order.id);
    const [event] = await s.sql`select kind from user_events where user_id = ${buyer} order by id desc limit 1`;
    expect(event!.kind).toBe("delivery_blocked");

    off();
    await Bun.sleep(150);
    expect(await s.shop.deliveries.byOrder(order.id)).toMatchObject({ status: "blocked" });
    // The buyer unblocks the bot and writes to it: the bot records them as seen, which clears "blocked".
    await s.shop.users.touch({ id: buyer, firstName: "Back" });
    await s.delivered(order.id);
    expect(s.tg.callsOf("sendDocument", buyer)).toHaveLength(2);
  });

  test("429: waits Telegram's retry_after and sends once", async () => {
    let refused = 0;
    const buyer = nextBuyer;
    const off = s.tg.onCall((c) =>
      Number(c.params.chat_id) === buyer && refused++ === 0
        ? { code: 429, description: "Too Many Requests: retry after 1", retryAfter: 1 }
        : undefined,
    );
    cleanups.push(off);
    job();
    const order = await paidOrder();
    await s.delivered(order.id, 5_000);
    const docs = s.tg.callsOf("sendDocument", buyer);
    expect(docs).toHaveLength(2);
    // The gap between the refused send and the retry, not a sleep, shows the wait: a slow machine only lengthens it.
    expect(docs[1]!.at - docs[0]!.at).toBeGreaterThanOrEqual(950);
    // The 429 did not count as an attempt.
    expect(await s.shop.deliveries.byOrder(order.id)).toMatchObject({ status: "sent", attempts: 1 });
  });

  test("a send that times out is aborted and retried only after the claim lease: the buyer gets it once", async () => {
    quietLogs();
    const slow = await s.product("Slow", { keys: 2 });
    const buyer = nextBuyer;
    // The first upload hangs (a slow 50 MB upload, a stuck Telegram) far beyond the job's send timeout.
    let hang = true;
    cleanups.push(
      s.tg.delayAnswers((c) => {
        if (c.method !== "sendDocument" || Number(c.params.chat_id) !== buyer || !hang) return undefined;
        hang = false;
        return 2_500;
      }),
    );
    // The retry must itself beat sendTimeoutMs, so that is not made tight: a loaded machine can take a few hundred
    // ms to upload even a tiny zip to the fake.
    job({ sendTimeoutMs: 800, leaseMs: 1_200, backoffMs: 50 });
    const order = await paidOrder(slow.id);
    expect(order.userId).toBe(buyer);
    await s.delivered(order.id, 8_000);
    const [first] = s.tg.callsOf("sendDocument", buyer);
    // Long enough for the first request to have completed, had it been left running.
    await Bun.sleep(Math.max(0, first!.at + 2_700 - Date.now()));

    const docs = s.tg.callsOf("sendDocument", buyer);
    expect(docs).toHaveLength(2);
    expect(docs[0]!.aborted).toBe(true);
    expect(docs.filter((d) => d.result !== undefined)).toHaveLength(1);
    expect(seen(docs[1]!.params.caption)).toStartWith("Ключ: MPH-");
    // Not after backoffMs (50 ms) but no sooner than the lease (1 200 ms) after the timeout (800 ms).
    expect(docs[1]!.at - docs[0]!.at).toBeGreaterThanOrEqual(1_950);
    expect(await s.shop.deliveries.byOrder(order.id)).toMatchObject({ status: "sent", attempts: 2 });
  });

  test("errors are retried with backoff; after the last attempt admins are told; an admin's retry delivers", async () => {
    quietLogs();
    const buyer = nextBuyer;
    const off = s.tg.onCall((c) =>
      Number(c.params.chat_id) === buyer ? { code: 500, description: "Internal Server Error" } : undefined,
    );
    job({ maxAttempts: 3, backoffMs: 20 });
    const order = await paidOrder();
    const alert = await s.tg.waitFor((calls) =>
      calls.find((c) => Number(c.params.chat_id) === ADMIN_ID && String(c.params.text).includes(`заказ №${order.id}`)),
    );
    expect(String(alert.params.text)).toContain("после 3 попыток");
    expect(s.tg.callsOf("sendDocument", buyer)).toHaveLength(3);
    expect(await s.shop.deliveries.byOrder(order.id)).toMatchObject({ status: "failed", attempts: 3 });

    off();
    expect(await s.shop.deliveries.retry(order.id)).toBe(true);
    await s.delivered(order.id);
    expect(s.tg.callsOf("sendDocument", buyer)).toHaveLength(4);
  });

  test("no bot token yet: the delivery waits without using up attempts and goes out once a token is set", async () => {
    quietLogs();
    const messenger = createTelegramMessenger({
      telegramApiUrl: s.tg.url,
      token: async () => (await s.shop.settings.get()).botToken,
    });
    await s.shop.settings.update({ botToken: null });
    cleanups.push(() => s.shop.settings.update({ botToken: TEST_TOKEN }));
    const j = startDeliveryJob(s.shop, messenger, { pollMs: 50, backoffMs: 20, maxAttempts: 2 });
    cleanups.push(() => j.stop());
    const order = await paidOrder();
    // Wait for the job to have tried (on a loaded machine its first poll may come late), then give it time to try
    // many more times.
    const deadline = Date.now() + 5_000;
    while ((await s.shop.deliveries.byOrder(order.id))?.lastError !== "the bot token is not set") {
      if (Date.now() > deadline) throw new Error("the job never tried the delivery");
      await Bun.sleep(20);
    }
    await Bun.sleep(300);
    // With maxAttempts 2 and a retry every ~20 ms, counted attempts would have failed it long ago.
    const waiting = await s.shop.deliveries.byOrder(order.id);
    expect(waiting).toMatchObject({ status: "pending", lastError: "the bot token is not set" });
    expect(waiting!.attempts).toBeLessThanOrEqual(1);
    await s.shop.settings.update({ botToken: TEST_TOKEN });
    await s.delivered(order.id);
    expect(s.tg.callsOf("sendDocument", order.userId)).toHaveLength(1);
  });
});

test("retry delays double per attempt from the base, with ±20 % jitter, up to the cap", () => {
  for (let attempt = 1; attempt <= 12; attempt++) {
    const nominal = Math.min(5_000 * 2 ** (attempt - 1), 3_600_000);
    for (let i = 0; i < 50; i++) {
      const ms = backoff(attempt, 5_000, 3_600_000);
      expect(ms).toBeGreaterThanOrEqual(nominal * 0.8);
      expect(ms).toBeLessThanOrEqual(nominal * 1.2);
    }
  }
});
