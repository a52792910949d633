/**
 * A process that does nothing but send broadcasts, for tests that kill it (SIGKILL: no cleanup of any kind). The
 * same job, shop and messenger as the shop's own process, with the pace a test can afford. Environment:
 * DATABASE_URL, REDIS_URL, REDIS_PREFIX, TELEGRAM_API_URL, BOT_TOKEN, and optionally RATE, CONCURRENCY, LEASE_MS.
 */
import { createTelegramMessenger } from "../../src/bot/messenger.ts";
import { RedisCache } from "../../src/cache/cache.ts";
import { loadConfig } from "../../src/config.ts";
import { connectDatabase } from "../../src/db/client.ts";
import { startBroadcastJob } from "../../src/jobs/broadcast.ts";
import { createShop } from "../../src/shop/index.ts";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const databaseUrl = env("DATABASE_URL");
const sql = connectDatabase(databaseUrl, { max: 4 });
const cache = new RedisCache(env("REDIS_URL"), env("REDIS_PREFIX"));
const shop = createShop({ sql, cache, config: { ...loadConfig({}), databaseUrl } });
const token = env("BOT_TOKEN");
const leaseMs = Number(process.env.LEASE_MS ?? 1_000);
startBroadcastJob({
  broadcasts: shop.broadcasts,
  messenger: createTelegramMessenger({ telegramApiUrl: env("TELEGRAM_API_URL"), token: async () => token }),
  ratePerSecond: Number(process.env.RATE ?? 2_000),
  concurrency: Number(process.env.CONCURRENCY ?? 16),
  claimLeaseMs: leaseMs,
  lockTtlMs: leaseMs,
  idlePollMs: 50,
});
console.log("broadcast sender started");
