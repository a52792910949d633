import { RedisCache } from "../../src/cache/cache.ts";
import type { Config } from "../../src/config.ts";
import type { Sql } from "../../src/db/client.ts";
import { type RunningShop, runShop } from "../../src/server.ts";
import { buttonData, messageIdOf } from "./bot.ts";
import { FakeTelegram, type RecordedCall, TEST_TOKEN, type TgUser } from "./fake-telegram.ts";
import { testConfig, testDatabase, testRedisPrefix } from "./shop.ts";

/** The messages a buyer sees: what a step of the bot answers with. */
const SENDS = new Set(["sendMessage", "editMessageText", "sendDocument"]);

export type ProductionShop = {
  tg: FakeTelegram;
  running: RunningShop;
  /** The Redis it runs on: another process in miniature (createShop + followChanges) joins it with these. */
  redisUrl: string;
  redisPrefix: string;
  /** The bot's next message to `user` after the call index `from` (tg.calls.length before the step). */
  nextTo: (user: TgUser, from: number, timeoutMs?: number) => Promise<RecordedCall>;
  /** The user writes `text` to the bot; resolves with the bot's answer. */
  say: (user: TgUser, text: string) => Promise<RecordedCall>;
  /** The user presses the button labelled `text` under the message `under`; resolves with the bot's answer. */
  press: (user: TgUser, text: string, under: RecordedCall) => Promise<RecordedCall>;
  stop: () => Promise<void>;
};

/**
 * The whole shop as production wires it (runShop: HTTP server on a free port, bot runtime, payments, jobs) on a
 * fresh database and Redis prefix, with the Bot API played by a local fake the bot really polls.
 */
export async function startProductionShop(
  overrides: Partial<Config> = {},
  options: {
    /**
     * The shop's own pool, made from the test database's URL (e.g. through a TcpProxy the test can cut). The
     * configuration keeps the direct URL, which the shop's session locks connect with.
     */
    pool?: (databaseUrl: string) => Sql;
  } = {},
): Promise<ProductionShop> {
  const tg = new FakeTelegram([TEST_TOKEN]).start();
  const db = await testDatabase();
  const redisUrl = process.env.MPH_TEST_REDIS_URL!;
  const redisPrefix = testRedisPrefix();
  const cache = new RedisCache(redisUrl, redisPrefix);
  const config = testConfig({
    databaseUrl: db.url,
    redisUrl,
    telegramApiUrl: tg.url,
    host: "127.0.0.1",
    port: 0,
    ...overrides,
  });
  const sql = options.pool ? options.pool(db.url) : db.sql;
  const running = await runShop(config, { sql, cache });

  const nextTo = (user: TgUser, from: number, timeoutMs = 8_000) =>
    tg.waitFor(
      (calls) => calls.slice(from).find((c) => SENDS.has(c.method) && Number(c.params.chat_id) === user.id),
      timeoutMs,
    );
  return {
    tg,
    running,
    redisUrl,
    redisPrefix,
    nextTo,
    say: async (user, text) => {
      const from = tg.calls.length;
      tg.sendText(TEST_TOKEN, user, text);
      return await nextTo(user, from);
    },
    press: async (user, text, under) => {
      const from = tg.calls.length;
      tg.pressButton(TEST_TOKEN, user, buttonData(under, text), {
        message_id: messageIdOf(under),
        text: String(under.params.text ?? ""),
      });
      return await nextTo(user, from);
    },
    stop: async () => {
      await running.stop();
      await cache.close();
      if (sql !== db.sql) await sql.end({ timeout: 2 });
      await db.sql.end({ timeout: 2 });
      await tg.stop();
    },
  };
}
