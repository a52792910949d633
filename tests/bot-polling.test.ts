/**
 * The poller (src/bot/polling.ts) with updates the shop could not do for now (outcome "retryLater", see
 * src/bot/outcome.ts): its offset stays at the first of them, the others of the batch are not answered again, the
 * same updates come back after a pause, and the poller runs on. A small GramIO bot plays the shop's (its handler
 * decides the outcome); Telegram is the fake Bot API; the position is kept in the shop's PostgreSQL as in production.
 */
import { afterEach, expect, setDefaultTimeout, test } from "bun:test";
import { Bot } from "gramio";
import type { ShopBot } from "../src/bot/bot.ts";
import { botApiBase } from "../src/bot/messenger.ts";
import { markRetryLater } from "../src/bot/outcome.ts";
import { Poller, RETRY_LATER_FIRST_MS } from "../src/bot/polling.ts";
import { buyer } from "./helpers/bot.ts";
import { FakeTelegram, TEST_TOKEN } from "./helpers/fake-telegram.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

setDefaultTimeout(30_000);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const BOT_ID = Number(TEST_TOKEN.split(":")[0]);

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 8_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(20);
  }
}

/** A poller of a bot whose message handler counts what it handled; "later" is kept `keep` times, then done. */
async function pollerWith(t: TestShop, keep: number) {
  const tg = new FakeTelegram([TEST_TOKEN]).start();
  cleanups.push(() => tg.stop());
  const handled: string[] = [];
  const positionsSeen: { next: number; answered: number[] }[] = [];
  let kept = 0;
  const bot = new Bot(TEST_TOKEN, { api: { baseURL: botApiBase(tg.url) } }).on("message", async (ctx) => {
    const text = ctx.payload.text ?? "";
    handled.push(text);
    if (text === "later") {
      // What the poller saved when it kept the update, as the next poller would read it.
      if (kept > 0) positionsSeen.push(await t.shop.botStatus.pollingPosition(BOT_ID));
      if (kept < keep) {
        kept++;
        markRetryLater();
      }
    }
  });
  const rejected: string[] = [];
  const start = () => {
    const poller = new Poller(
      { token: TEST_TOKEN, bot: bot as unknown as ShopBot, info: { id: BOT_ID, is_bot: true, first_name: "Shop" } },
      {
        apiBase: botApiBase(tg.url),
        pollTimeoutS: 1,
        positions: t.shop.botStatus,
        tokenRejected: (error) => rejected.push(error),
      },
    );
    cleanups.push(() => poller.stop());
    return poller;
  };
  return { tg, handled, positionsSeen, rejected, start };
}

test("a batch where one update is kept for later: the offset stays there, the others are not answered again, the poller runs on", async () => {
  const t = await createTestShop();
  cleanups.push(t.close);
  const p = await pollerWith(t, 2);
  // One batch: three buyers' messages, the middle one kept for later (twice), the last one answered at once.
  p.tg.sendText(TEST_TOKEN, buyer(701, "A"), "first");
  const later = p.tg.sendText(TEST_TOKEN, buyer(702, "B"), "later");
  const last = p.tg.sendText(TEST_TOKEN, buyer(703, "C"), "last");
  const startedAt = Date.now();
  p.start();

  await until(() => p.handled.filter((x) => x === "later").length === 3);
  // Handled again after growing pauses (1 s, then 2 s), not in a tight loop.
  expect(Date.now() - startedAt).toBeGreaterThanOrEqual(RETRY_LATER_FIRST_MS * 3 - 100);
  // While it was kept, the saved position started at it and named the later update that was answered.
  expect(p.positionsSeen).toEqual([
    { next: later, answered: [last] },
    { next: later, answered: [last] },
  ]);
  await until(async () => (await t.shop.botStatus.pollingPosition(BOT_ID)).next === last + 1);
  expect(await t.shop.botStatus.pollingPosition(BOT_ID)).toEqual({ next: last + 1, answered: [] });

  // The poller runs on (a kept update is not a revoked token): a new message is answered, once.
  const next = p.tg.sendText(TEST_TOKEN, buyer(701, "A"), "next");
  await until(async () => (await t.shop.botStatus.pollingPosition(BOT_ID)).next === next + 1);
  expect([...p.handled].sort()).toEqual(["first", "last", "later", "later", "later", "next"]);
  expect(p.rejected).toEqual([]);
});

test("stopping the poller while it waits to handle a kept update again is prompt, and leaves the update to the next one", async () => {
  const t = await createTestShop();
  cleanups.push(t.close);
  const p = await pollerWith(t, 100);
  const later = p.tg.sendText(TEST_TOKEN, buyer(702, "B"), "later");
  const poller = p.start();
  // Kept three times: the pause is 4 s by now.
  await until(() => p.handled.length === 3);
  const stopping = Date.now();
  await poller.stop();
  expect(Date.now() - stopping).toBeLessThan(1_000);
  expect(await t.shop.botStatus.pollingPosition(BOT_ID)).toEqual({ next: later, answered: [] });
});
