import { connectCache } from "../src/cache/cache.ts";
import { loadConfig } from "../src/config.ts";
import { connectDatabase } from "../src/db/client.ts";
import { flushRequestTally } from "../src/http/request-log.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { buildHttpApp } from "../src/server.ts";
import { followChanges } from "../src/shop/changes.ts";
import { createShop } from "../src/shop/index.ts";
import { MismatchLog } from "../src/shop/licence/mismatches.ts";

/**
 * The production HTTP app (every route, the request log, error handling) plus one route that answers a constant
 * JSON object of the auth API's success shape: the baseline, measured on the same server in the same run. Started
 * by bench/auth.ts as its own process, configured by the environment like `bun run start`.
 */
const config = loadConfig();
setLogLevel(config.logLevel);
const sql = connectDatabase(config.databaseUrl!);
const cache = connectCache(config.redisUrl, config.redisPrefix);
await cache.ready(2_000);
const shop = createShop({ sql, cache, config });
// BENCH_AUTH_CACHE=off: every auth call reads its key from Postgres (bench/auth compares 1 000 keys with 1 000 000).
if (process.env.BENCH_AUTH_CACHE === "off") shop.authCache.put = () => {};
// BENCH_SIGNING=off: answers go out unsigned, as before signing — the baseline bench/auth measures signing against.
if (process.env.BENCH_SIGNING === "off") {
  shop.signing.signatureHeader = () => null;
  shop.signing.repeatableSignatureHeader = () => null;
}
// BENCH_MISMATCH_LOG=off: HWID mismatches are not recorded (no counting, no writes, no sharing check), as before
// the key page: the baseline bench/mismatch-recording measures the recording against.
if (process.env.BENCH_MISMATCH_LOG === "off") MismatchLog.prototype.add = () => {};
const stopFollowing = await followChanges(shop);

const CONSTANT = { success: true, message: "OK", days: 29, hours: 23, expires_at: "2030-01-01T00:00:00.000Z" };
const app = buildHttpApp(shop, config).post(`${config.basePath}/bench/constant`, () => CONSTANT);
app.listen({ hostname: config.host, port: config.port });
console.error(`bench server listening on ${config.host}:${app.server!.port}`);

process.on("SIGTERM", async () => {
  await app.stop(true);
  flushRequestTally();
  await stopFollowing();
  await cache.close();
  await sql.end({ timeout: 2 });
  process.exit(0);
});
