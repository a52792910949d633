import postgres from "postgres";
import { type Cache, RedisCache } from "../../src/cache/cache.ts";
import { type Config, loadConfig } from "../../src/config.ts";
import { connectDatabase, type Sql } from "../../src/db/client.ts";
import { buildHttpApp } from "../../src/server.ts";
import { followChanges } from "../../src/shop/changes.ts";
import { createShop, type Shop } from "../../src/shop/index.ts";

let counter = 0;

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`bun test\` (tests/preload.ts sets it)`);
  return value;
}

/** A fresh database cloned from the run's migrated template; dropped with the run. */
export async function testDatabase(): Promise<{ url: string; name: string; sql: Sql }> {
  const name = `mph_t_${env("MPH_TEST_RUN_ID")}_${process.pid}_${++counter}`;
  const admin = postgres(env("MPH_TEST_ADMIN_URL"), { max: 1, onnotice: () => {} });
  // Cloning needs the template to have no other sessions; retry briefly if a parallel clone holds it.
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.unsafe(`create database "${name}" template "${env("MPH_TEST_TEMPLATE")}"`);
      break;
    } catch (error) {
      if (attempt > 20) throw error;
      await Bun.sleep(50);
    }
  }
  await admin.end();
  const u = new URL(env("MPH_TEST_ADMIN_URL"));
  u.pathname = `/${name}`;
  return { url: u.toString(), name, sql: connectDatabase(u.toString(), { max: 10 }) };
}

/** Redis key prefix unique to this run and this caller, cleaned at the end of the run. */
export function testRedisPrefix(): string {
  return `mphtest:${env("MPH_TEST_RUN_ID")}:${process.pid}:${++counter}:`;
}

export function testConfig(overrides: Partial<Config> = {}): Config {
  return {
    ...loadConfig({}),
    sessionSecret: "test-session-secret-test-session-secret",
    dataDir: `/tmp/mph-test-${env("MPH_TEST_RUN_ID")}-${process.pid}-${++counter}`,
    // Tests make hundreds of calls from one address; limits are tested on their own with small numbers.
    authLimitPerIp: 1_000_000,
    authLimitPerKey: 1_000_000,
    ...overrides,
  };
}

export type TestShop = {
  shop: Shop;
  sql: Sql;
  cache: Cache;
  config: Config;
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  app: ReturnType<typeof buildHttpApp>;
  /** `app.handle` on a path under BASE_PATH, e.g. request("/api/Foo/auth", { method: "POST", ... }). */
  request: (path: string, init?: RequestInit) => Promise<Response>;
  close: () => Promise<void>;
};

/** A complete shop (domain + HTTP app) on its own fresh database and Redis prefix. */
export async function createTestShop(overrides: Partial<Config> = {}): Promise<TestShop> {
  const db = await testDatabase();
  const redisUrl = env("MPH_TEST_REDIS_URL");
  const redisPrefix = testRedisPrefix();
  const cache = new RedisCache(redisUrl, redisPrefix);
  // Rate-limit tests count from the first request: do not let it fall into "Redis not connected yet, fail open".
  await cache.ready(2_000);
  const config = testConfig({ databaseUrl: db.url, redisUrl, redisPrefix, ...overrides });
  const shop = createShop({ sql: db.sql, cache, config });
  const stopFollowing = await followChanges(shop);
  const app = buildHttpApp(shop, config);
  const base = `http://localhost${encodeURI(config.basePath)}`;
  return {
    shop,
    sql: db.sql,
    cache,
    config,
    databaseUrl: db.url,
    redisUrl,
    redisPrefix,
    app,
    request: (path, init) => app.handle(new Request(`${base}${path}`, init)),
    close: async () => {
      await stopFollowing();
      await cache.close();
      await db.sql.end({ timeout: 2 });
    },
  };
}
