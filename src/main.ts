import { connectCache } from "./cache/cache.ts";
import { ConfigError, loadConfig, requireProduction } from "./config.ts";
import { connectDatabase } from "./db/client.ts";
import { migrate } from "./db/migrate.ts";
import { log, setLogLevel } from "./lib/log.ts";
import { IN_FLIGHT_LIMIT_MS, runShop } from "./server.ts";

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
  onShutdown(
    async () => {
      // Behind Caddy with other processes (setup.sh --instances N): serve on while the balancer learns this one is
      // leaving, then close the port. Closing it at once would make Caddy resend the calls on their way here, and
      // Caddy 2.6 resends a buffered call without its body (a 502 for the loader).
      running.leave();
      if (config.shutdownDrainMs > 0) {
        log.info("leaving: serving while the balancer moves calls elsewhere", { ms: config.shutdownDrainMs });
        await Bun.sleep(config.shutdownDrainMs);
      }
      await running.stop();
      await cache.close();
      await sql.end({ timeout: 5 });
    },
    config.shutdownDrainMs + IN_FLIGHT_LIMIT_MS + 5_000,
  );
}

/**
 * Runs cleanup once on SIGTERM/SIGINT, then exits; a second signal exits at once, and so does a cleanup that takes
 * longer than `limitMs` (within systemd's TimeoutStopSec, 30 s, after which it kills the process).
 */
export function onShutdown(cleanup: () => Promise<void>, limitMs = 20_000): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info("shutting down", { signal });
    const force = setTimeout(() => {
      log.error("shutdown took too long, exiting");
      process.exit(1);
    }, limitMs);
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
