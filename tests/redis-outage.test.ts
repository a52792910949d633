import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { RedisCache } from "../src/cache/cache.ts";
import type { Config } from "../src/config.ts";
import { buildHttpApp } from "../src/server.ts";
import { followChanges } from "../src/shop/changes.ts";
import { createShop } from "../src/shop/index.ts";
import { eventually, HWID_MISMATCH, KEY_BANNED } from "./helpers/licence.ts";
import { freePort, redisAnswers } from "./helpers/servers.ts";
import { testConfig, testDatabase, testRedisPrefix } from "./helpers/shop.ts";

// These tests start processes and servers: on a loaded shared machine that can take a while; hang protection only.
setDefaultTimeout(30_000);

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A shop whose cache is the given Redis (possibly a dead one), on its own fresh database. */
async function shopWithRedis(redisUrl: string, overrides: Partial<Config> = {}) {
  const db = await testDatabase();
  cleanups.push(() => db.sql.end({ timeout: 2 }));
  return await assemble(db, redisUrl, testRedisPrefix(), overrides);
}

async function assemble(
  db: { url: string; sql: Awaited<ReturnType<typeof testDatabase>>["sql"] },
  redisUrl: string,
  prefix: string,
  overrides: Partial<Config>,
) {
  const cache = new RedisCache(redisUrl, prefix);
  const config = testConfig({ databaseUrl: db.url, redisUrl, redisPrefix: prefix, ...overrides });
  const shop = createShop({ sql: db.sql, cache, config });
  const startedAt = performance.now();
  const stopFollowing = await followChanges(shop);
  const followMs = performance.now() - startedAt;
  const app = buildHttpApp(shop, config);
  const base = `http://localhost${encodeURI(config.basePath)}`;
  const s = {
    shop,
    sql: db.sql,
    dbUrl: db.url,
    prefix,
    followMs,
    request: (path: string, init?: RequestInit) => app.handle(new Request(`${base}${path}`, init)),
    auth: async (key: string, uuid: string) => {
      const res = await app.handle(new Request(`${base}/api/P/auth?key=${key}&uuid=${uuid}`));
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    health: async () => {
      const res = await app.handle(new Request(`${base}/healthz`));
      return { status: res.status, body: await res.json() };
    },
    soldKey: async () => {
      const product = (await shop.products.byName("P")) ?? (await shop.products.create({ name: "P" }));
      const [key] = await shop.keys.generate(product.id, 1, 1);
      await shop.keys.issue(product.id, 1);
      return key!;
    },
  };
  cleanups.push(async () => {
    await stopFollowing();
    await cache.close();
  });
  return s;
}

/** A redis-server of our own on a fixed port, so it can be stopped and started again without touching the shared one. */
function ownRedis(port: number) {
  const bin = Bun.which("redis-server");
  if (!bin) throw new Error("redis-server is not installed: apt-get install redis-server");
  let proc: ReturnType<typeof Bun.spawn> | null = null;
  const url = `redis://127.0.0.1:${port}`;
  const server = {
    url,
    start: async () => {
      proc = Bun.spawn([bin, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
        stdout: "ignore",
        stderr: "ignore",
      });
      for (let i = 0; i < 100 && !(await redisAnswers(url)); i++) await Bun.sleep(50);
    },
    stop: async () => {
      proc?.kill();
      await proc?.exited;
      proc = null;
    },
  };
  cleanups.push(server.stop);
  return server;
}

describe("with Redis unreachable from the start (a dead port)", () => {
  test("the shop starts at once, answers the auth API correctly, limits fail open, healthz says redis down", async () => {
    const s = await shopWithRedis("redis://127.0.0.1:1", { authLimitPerIp: 1, authLimitPerKey: 1 });
    expect(s.followMs).toBeLessThan(3_000);
    const key = await s.soldKey();
    const first = await s.auth(key, "PC");
    expect(first.status).toBe(200);
    // Far over both limits of 1: nothing is counted, nothing refused.
    for (let i = 0; i < 5; i++) expect((await s.auth(key, "PC")).body.expires_at).toBe(first.body.expires_at);
    expect(await s.auth(key, "OTHER")).toEqual(HWID_MISMATCH);
    // This instance's own changes still apply at once.
    await s.shop.keys.setBanned({ key }, true);
    expect(await s.auth(key, "PC")).toEqual(KEY_BANNED);
    expect(await s.health()).toEqual({ status: 200, body: { ok: true, postgres: "ok", redis: "down", bot: "off" } });
  });
});

describe("with Redis stopped in the middle and started again", () => {
  test("limits fail open while it is away; limits, healthz and change announcements come back with it", async () => {
    const redis = ownRedis(freePort());
    await redis.start();
    const a = await shopWithRedis(redis.url, { authLimitPerKey: 3 });
    // A second instance on the same database and namespace, to see announcements travel.
    const b = await assemble({ url: a.dbUrl, sql: a.sql }, redis.url, a.prefix, { authLimitPerKey: 3 });
    const key = await a.soldKey();
    for (let i = 0; i < 3; i++) expect((await a.auth(key, "PC")).status).toBe(200);
    expect((await a.auth(key, "PC")).status).toBe(429);
    expect((await a.health()).body).toMatchObject({ redis: "ok" });

    const fresh = await a.soldKey();
    await redis.stop();
    // Nothing can be counted: a key far over the limit of 3 is answered, and answered right.
    for (let i = 0; i < 6; i++) expect((await a.auth(fresh, "PC")).status).toBe(200);
    expect(await a.auth(fresh, "OTHER")).toEqual(HWID_MISMATCH);
    // A limit this process had already seen reached stays in force until its window ends.
    expect((await a.auth(key, "PC")).status).toBe(429);
    expect(await a.health()).toEqual({ status: 200, body: { ok: true, postgres: "ok", redis: "down", bot: "off" } });

    await redis.start();
    await eventually(async () => (await a.health()).body.redis === "ok", 5_000);
    await eventually(async () => (await b.health()).body.redis === "ok", 5_000);
    // Counting again in the new Redis.
    const again = await a.soldKey();
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await a.auth(again, "PC")).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    // The subscriptions were restored: a ban made through A reaches B's cached answer.
    const other = await a.soldKey();
    expect((await b.auth(other, "PC")).status).toBe(200);
    expect(b.shop.authCache.get("P", other)).not.toBeNull();
    await eventually(async () => {
      // Resubscription happens shortly after the reconnect; keep announcing until B hears it.
      await a.shop.keys.setBanned({ key: other }, true);
      return b.shop.authCache.get("P", other) === null;
    }, 5_000);
    expect(await b.auth(other, "PC")).toEqual(KEY_BANNED);
  });
});

describe("with Redis down, changes made by another process", () => {
  test("settings and the admin list are re-read periodically, and no more once following stops", async () => {
    const db = await testDatabase();
    const cache = new RedisCache("redis://127.0.0.1:1", testRedisPrefix());
    const shop = createShop({ sql: db.sql, cache, config: testConfig({ databaseUrl: db.url }) });
    let following: (() => Promise<void>) | null = await followChanges(shop, { reloadEveryMs: 100 });
    const stopFollowing = async () => {
      await following?.();
      following = null;
    };
    cleanups.push(async () => {
      await stopFollowing();
      await cache.close();
      await db.sql.end({ timeout: 2 });
    });
    const changes: boolean[] = [];
    shop.settings.onChange((now) => changes.push(now.botEnabled));
    expect((await shop.settings.get()).botEnabled).toBe(false);
    expect(await shop.admins.isAdmin(555_001)).toBe(false);

    // What another instance's panel writes; its announcement through Redis never arrives.
    await db.sql`update settings set bot_enabled = true, updated_at = clock_timestamp() where id = 1`;
    await db.sql`insert into bot_admins (telegram_id) values (555001)`;
    await eventually(async () => (await shop.settings.get()).botEnabled && (await shop.admins.isAdmin(555_001)), 2_000);
    expect(changes).toEqual([true]);

    await stopFollowing();
    await db.sql`update settings set bot_enabled = false, updated_at = clock_timestamp() where id = 1`;
    await Bun.sleep(400);
    expect((await shop.settings.get()).botEnabled).toBe(true);
  });
});
