import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { connectCache } from "./cache/cache.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { connectDatabase } from "./db/client.ts";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "./db/embedded.ts";
import { migrate } from "./db/migrate.ts";
import { setLogLevel } from "./lib/log.ts";
import { onShutdown } from "./main.ts";
import { runShop } from "./server.ts";

/**
 * `bun run dev`: the whole shop with nothing installed but Bun. Without DATABASE_URL it runs PGlite (data kept in
 * DATA_DIR/pglite), without REDIS_URL an in-process cache, without SESSION_SECRET one kept in DATA_DIR. On first
 * start it creates the panel account and prints the login.
 */
async function dev(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`config error: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  setLogLevel(config.logLevel);
  await mkdir(config.dataDir, { recursive: true });
  if (!config.sessionSecret) config.sessionSecret = await devSessionSecret(config.dataDir);

  let embedded: EmbeddedDatabase | null = null;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedDatabase(config.dataDir);
    databaseUrl = embedded.url;
  }
  const sql = connectDatabase(databaseUrl, { max: embedded ? 1 : 10 });
  const cache = connectCache(config.redisUrl, config.redisPrefix);
  await migrate(sql);

  const running = await runShop(config, { sql, cache });
  const lines = [
    "",
    "Morpheus Shop is running (development).",
    `  panel:    ${running.url}`,
    `  database: ${embedded ? `embedded PGlite in ${join(config.dataDir, "pglite")}` : "DATABASE_URL"}`,
    `  cache:    ${config.redisUrl ? "REDIS_URL" : "in-process"}`,
  ];
  if ((await running.shop.accounts.count()) === 0) {
    const account = await running.shop.accounts.reset("admin");
    lines.push(
      `  login:    ${account.login}`,
      `  password: ${account.password}`,
      "  (shown once; `bun run cli admin:reset` makes a new one)",
    );
  }
  console.log(`${lines.join("\n")}\n`);

  onShutdown(async () => {
    await running.stop();
    await cache.close();
    await sql.end({ timeout: 5 });
    await embedded?.stop();
  });
}

async function devSessionSecret(dataDir: string): Promise<string> {
  const file = Bun.file(join(dataDir, "session-secret"));
  if (await file.exists()) {
    const text = (await file.text()).trim();
    if (text.length >= 32) return text;
  }
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  await Bun.write(file, secret);
  return secret;
}

dev().catch((error) => {
  console.error(`dev failed: ${(error as Error).message}`);
  process.exit(1);
});
