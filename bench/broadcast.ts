/**
 * bench/broadcast: a broadcast to BENCH_BROADCAST_USERS (10 000) bot users, sent by the production process
 * (`bun src/main.ts`: the broadcast job as it runs, at its configured 25 messages/s) to a fake Bot API on loopback
 * that refuses with 429 any message beyond 30 in a sliding second, as Telegram does. All of 10 000 takes ~400 s at
 * 25/s, so the run measures a window of BENCH_BROADCAST_WINDOW seconds (60) from the first message: the rate
 * achieved against the configured one, and the 429s. The process is then stopped (SIGTERM) and the database must
 * agree with the fake: every message Telegram accepted is recorded as sent, none was sent twice.
 *
 * Standalone: `bun run bench/broadcast.ts`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisCache } from "../src/cache/cache.ts";
import { loadConfig } from "../src/config.ts";
import { connectDatabase } from "../src/db/client.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { createShop } from "../src/shop/index.ts";
import { FakeTelegram, TEST_TOKEN } from "../tests/helpers/fake-telegram.ts";
import {
  type BenchResult,
  benchDatabase,
  bounded,
  type Check,
  clearRedisPrefix,
  fmt,
  freePort,
  load,
  REDIS_URL,
  ROOT,
} from "./lib.ts";

const USERS = Number(process.env.BENCH_BROADCAST_USERS ?? 10_000);
const WINDOW_S = Number(process.env.BENCH_BROADCAST_WINDOW ?? 60);
/** The job's default (src/jobs/broadcast.ts), kept under Telegram's 30 per second. */
const CONFIGURED_RATE = 25;
const TELEGRAM_LIMIT = 30;

export function runBroadcastBench(): Promise<BenchResult> {
  return bounded("broadcast", (WINDOW_S + 120) * 1000, async (defer) => {
    const started = performance.now();
    setLogLevel("error");
    const loadBefore = load();
    const runId = `${Date.now().toString(36)}${process.pid}`;
    const prefix = `mphbench:${runId}:broadcast:`;
    defer(() => clearRedisPrefix(prefix));
    const db = await benchDatabase("broadcast");
    defer(db.drop);
    const sql = connectDatabase(db.url, { max: 2 });
    defer(() => sql.end({ timeout: 2 }));
    await sql`
      insert into bot_users (telegram_id, first_name)
      select 700000000 + g, 'User ' || g from generate_series(1, ${USERS}) g`;

    const tg = new FakeTelegram([TEST_TOKEN]).start();
    defer(() => tg.stop());
    tg.limitRate(TELEGRAM_LIMIT);
    const dataDir = await mkdtemp(join(tmpdir(), "mph-bench-broadcast-"));
    defer(() => rm(dataDir, { recursive: true, force: true }));

    // The production process, configured by the environment like `bun run start`.
    const port = freePort();
    const app = Bun.spawn(["bun", "src/main.ts"], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        REDIS_URL,
        REDIS_PREFIX: prefix,
        SESSION_SECRET: "bench-session-secret-that-is-long-enough-0123456789",
        TELEGRAM_API_URL: tg.url,
        BOT_TOKEN: TEST_TOKEN,
        HOST: "127.0.0.1",
        PORT: String(port),
        DATA_DIR: dataDir,
        LOG_LEVEL: "warn",
      },
      stdout: "ignore",
      stderr: "inherit",
    });
    defer(async () => {
      if (app.exitCode !== null) return;
      app.kill("SIGKILL");
      await app.exited;
    });
    const health = `http://127.0.0.1:${port}/Morpheus%20Private/healthz`;
    for (let i = 0; ; i++) {
      if (app.exitCode !== null) throw new Error(`bench/broadcast: the app exited (${app.exitCode})`);
      if (
        await fetch(health).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      if (i > 300) throw new Error("bench/broadcast: the app did not start within 30 s");
      await Bun.sleep(100);
    }

    const cache = new RedisCache(REDIS_URL, prefix);
    defer(() => cache.close());
    await cache.ready(2_000);
    const shop = createShop({ sql, cache, config: loadConfig({}) });
    const broadcast = await shop.broadcasts.create({
      text: "Вышло обновление: загрузите новую сборку.",
      createdBy: "bench",
    });
    const sends = () => tg.calls.filter((c) => c.method === "sendMessage");
    await tg.waitFor((calls) => calls.some((c) => c.method === "sendMessage"), 30_000);
    const t0 = sends()[0]!.at;
    const limitedBefore = tg.rateLimited;
    await Bun.sleep(Math.max(0, t0 + WINDOW_S * 1000 - Date.now()));
    const inWindow = sends().filter((c) => c.at < t0 + WINDOW_S * 1000);
    const limitedInWindow = tg.rateLimited - limitedBefore;

    // A graceful stop puts the recipients not yet attempted back in the queue; then the books must balance.
    app.kill("SIGTERM");
    await Promise.race([app.exited, Bun.sleep(20_000)]);
    const accepted = sends().filter((c) => c.result !== undefined);
    const chats = new Set(accepted.map((c) => Number(c.params.chat_id)));
    const progress = (await shop.broadcasts.byId(broadcast.id))!.progress;
    const delivered = inWindow.filter((c) => c.result !== undefined).length;
    const rate = delivered / WINDOW_S;
    // The most messages that arrived in any one second, as Telegram counts them.
    const times = inWindow.map((c) => c.at).sort((a, b) => a - b);
    let busiest = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i]! - times[j]! >= 1000) j++;
      busiest = Math.max(busiest, i - j + 1);
    }
    const booksBalance = chats.size === accepted.length && progress.sent === accepted.length;
    const share = rate / CONFIGURED_RATE;

    const checks: Check[] = [
      {
        id: "broadcast.rate",
        benchmark: "broadcast",
        what: `messages/s over the first ${WINDOW_S} s of a ${fmt(USERS)}-user broadcast vs the configured rate`,
        figure: `${rate.toFixed(1)}/s`,
        baseline: `${CONFIGURED_RATE}/s configured`,
        value: share,
        target: "≥ 0.90",
        met: share >= 0.9 && booksBalance,
      },
      {
        id: "broadcast.429",
        benchmark: "broadcast",
        what: `429 answers from the fake Bot API (limit ${TELEGRAM_LIMIT}/s) in that window`,
        figure: String(limitedInWindow),
        baseline: `busiest second: ${busiest} messages`,
        value: limitedInWindow,
        target: "0",
        met: limitedInWindow === 0,
      },
    ];
    const markdown = [
      "## Broadcast",
      "",
      `A broadcast to ${fmt(USERS)} bot users, sent by the production process (\`bun src/main.ts\`, the broadcast job at its`,
      `configured ${CONFIGURED_RATE} messages/s) to a fake Bot API on loopback that answers 429 to any message beyond ${TELEGRAM_LIMIT} in a`,
      `sliding second. **Measured over a ${WINDOW_S} s window** from the first message, not the whole broadcast (all of it takes`,
      `~${Math.round(USERS / CONFIGURED_RATE)} s at ${CONFIGURED_RATE}/s); \`BENCH_BROADCAST_USERS\` and \`BENCH_BROADCAST_WINDOW\` change both.`,
      "",
      "| figure | value |",
      "|---|---:|",
      `| messages accepted in the window | ${fmt(delivered)} |`,
      `| achieved rate | **${rate.toFixed(2)}/s** (${(share * 100).toFixed(1)} % of ${CONFIGURED_RATE}/s) |`,
      `| most messages in any one second | ${busiest} (Telegram's limit ${TELEGRAM_LIMIT}) |`,
      `| 429 answers in the window | ${limitedInWindow} |`,
      `| after SIGTERM: accepted by the fake / recorded sent / distinct users | ${fmt(accepted.length)} / ${fmt(progress.sent)} / ${fmt(chats.size)} |`,
      `| the rest of the broadcast at this rate | ${fmt((USERS - accepted.length) / rate)} s, pending in the queue: ${fmt(progress.pending)} |`,
      "",
      booksBalance
        ? "The database agrees with the fake: each accepted message is recorded as sent, no user got it twice."
        : "**The database and the fake disagree: the figures are not valid.**",
      `Load average ${loadBefore} before, ${load()} after.`,
      "",
    ].join("\n");
    return { name: "broadcast", markdown, checks, seconds: (performance.now() - started) / 1000 };
  });
}

if (import.meta.main) {
  const result = await runBroadcastBench();
  console.log(result.markdown);
}
