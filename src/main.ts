import { connectCache } from "./cache/cache.ts";
import { ConfigError, loadConfig, requireProduction } from "./config.ts";
import { connectDatabase } from "./db/client.ts";
import { migrate } from "./db/migrate.ts";
import { log, setLogLevel } from "./lib/log.ts";
import { runShop } from "./server.ts";

/**
 * `bun run start`: the production process that systemd runs, configured by the environment alone
 * (docs/operator.md#configuration).
 * Order: config → stores → migrations → shop; on SIGTERM the reverse, letting requests in flight finish.
 */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
    requireProduction(config);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`config error: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  setLogLevel(config.logLevel);
  const sql = connectDatabase(config.databaseUrl!);
  const cache = connectCache(config.redisUrl, config.redisPrefix);
  await migrate(sql);
  const running = await runShop(config, { sql, cache });
  onShutdown(async () => {
    await running.stop();
    await cache.close();
    await sql.end({ timeout: 5 });
  });
}

/** Runs cleanup once on SIGTERM/SIGINT, then exits; a second signal exits at once. */
export function onShutdown(cleanup: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info("shutting down", { signal });
    const force = setTimeout(() => {
      log.error("shutdown took too long, exiting");
      process.exit(1);
    }, 15_000);
    cleanup()
      .then(() => {
        clearTimeout(force);
        log.info("stopped");
        process.exit(0);
      })
      .catch((error) => {
        log.error("shutdown failed", { error });
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => handler("SIGTERM"));
  process.on("SIGINT", () => handler("SIGINT"));
}

if (import.meta.main) {
  main().catch((error) => {
    console.error(`start failed: ${(error as Error).message}`);
    process.exit(1);
  });
}
