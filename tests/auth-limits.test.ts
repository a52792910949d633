import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { RedisCache } from "../src/cache/cache.ts";
import { RateLimiter } from "../src/cache/rate-limit.ts";
import { connectDatabase } from "../src/db/client.ts";
import { buildHttpApp } from "../src/server.ts";
import { followChanges } from "../src/shop/changes.ts";
import { createShop } from "../src/shop/index.ts";
import { licenceRateKey } from "../src/shop/limits.ts";
import {
  type AuthAnswer,
  auth,
  ensureProduct,
  eventually,
  HWID_MISMATCH,
  KEY_BANNED,
  soldKey,
} from "./helpers/licence.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// These tests start processes and servers: on a loaded shared machine that can take a while; hang protection only.
setDefaultTimeout(30_000);

const P = "Limited";
const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

async function shopOnPort(overrides: Parameters<typeof createTestShop>[0]) {
  const t = await createTestShop(overrides);
  await ensureProduct(t, P);
  const server = t.app.listen({ hostname: "127.0.0.1", port: 0 }).server!;
  closers.push(async () => {
    await t.app.stop(true);
    await t.close();
  });
  const base = `http://127.0.0.1:${server.port}${encodeURI(t.config.basePath)}`;
  const call = async (key: string, uuid: string, forwardedFor?: string): Promise<AuthAnswer & { headers: Headers }> => {
    const res = await fetch(`${base}/api/${P}/auth`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(forwardedFor ? { "x-forwarded-for": forwardedFor } : {}) },
      body: JSON.stringify({ key, uuid }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
  };
  return { t, call };
}

/** A second app process in miniature: its own pools, the same database and Redis namespace as `t`. */
async function peerOf(t: TestShop) {
  const sql = connectDatabase(t.databaseUrl, { max: 4 });
  const cache = new RedisCache(t.redisUrl, t.redisPrefix);
  await cache.ready(2_000);
  const shop = createShop({ sql, cache, config: t.config });
  const stopFollowing = await followChanges(shop);
  const app = buildHttpApp(shop, t.config);
  const base = `http://localhost${encodeURI(t.config.basePath)}`;
  const peer = {
    shop,
    request: (path: string, init?: RequestInit) => app.handle(new Request(`${base}${path}`, init)),
    close: async () => {
      await stopFollowing();
      await cache.close();
      await sql.end({ timeout: 2 });
    },
  };
  closers.push(peer.close);
  return peer;
}

const TOO_MANY = { success: false, message: "Too many requests" };

describe("rate limits (kept in Redis)", () => {
  test("per IP: the 6th call in a minute from one address gets 429 with Retry-After; other addresses go on", async () => {
    const { call } = await shopOnPort({ authLimitPerIp: 5 });
    for (let i = 0; i < 5; i++) {
      expect((await call(`UNKNOWN-${i}`, "PC")).body.message).toBe("Key mismatch");
    }
    const limited = await call("UNKNOWN-5", "PC");
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual(TOO_MANY);
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Behind the local proxy (a trusted peer) the client is the X-Forwarded-For address: its own budget.
    expect((await call("UNKNOWN-6", "PC", "203.0.113.7")).status).toBe(403);
  });

  test("per key: the 4th call for one key is refused even from different addresses; other keys go on", async () => {
    const { t, call } = await shopOnPort({ authLimitPerKey: 3 });
    const key = await soldKey(t, P);
    for (let i = 0; i < 3; i++) expect((await call(key, "PC", `198.51.100.${i}`)).status).toBe(200);
    const limited = await call(key, "PC", "198.51.100.9");
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual(TOO_MANY);
    const other = await soldKey(t, P);
    expect((await call(other, "PC", "198.51.100.9")).status).toBe(200);
  });

  test("X-Forwarded-For from a peer that is not our proxy is ignored", async () => {
    const { call } = await shopOnPort({ authLimitPerIp: 2, trustedProxies: [] });
    expect((await call("A", "PC", "192.0.2.1")).status).toBe(403);
    expect((await call("B", "PC", "192.0.2.2")).status).toBe(403);
    expect((await call("C", "PC", "192.0.2.3")).status).toBe(429);
  });

  test("a burst of 30 concurrent calls for one key with a limit of 10: exactly 10 answered, 20 refused", async () => {
    const { t, call } = await shopOnPort({ authLimitPerKey: 10 });
    const key = await soldKey(t, P);
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => call(key, "PC", `198.51.100.${i}`)));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(10);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(20);
  });

  test("calls far below the limits are counted in Redis too, in batches", async () => {
    const { t, call } = await shopOnPort({ authLimitPerKey: 100 });
    const key = await soldKey(t, P);
    for (let i = 0; i < 7; i++) await call(key, "PC");
    await eventually(async () => (await t.cache.get(`rl:${licenceRateKey(key)}`)) === "7", 5_000);
  });

  test("two app instances count together (each hears the other's count within a flush interval)", async () => {
    const t = await createTestShop({ authLimitPerKey: 4 });
    closers.push(t.close);
    const peer = await peerOf(t);
    const key = await soldKey(t, P);
    const body = JSON.stringify({ key, uuid: "PC" });
    const init = { method: "POST", headers: { "content-type": "application/json" }, body };
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await t.request(`/api/${P}/auth`, init)).status);
      await Bun.sleep(100);
      statuses.push((await peer.request(`/api/${P}/auth`, init)).status);
      await Bun.sleep(100);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
  });
});

describe("the limiter's memory", () => {
  test("keys asked once each are sent to Redis and then forgotten; a key near its limit is kept and refused exactly", async () => {
    const t = await createTestShop({});
    closers.push(t.close);
    const limiter = new RateLimiter(t.cache, 10_000);
    const rule = (key: string, limit = 120) => [{ key: `mem:${key}`, limit, windowMs: 60_000 }];
    for (let i = 0; i < 1_000; i++) expect((await limiter.check(rule(`k${i}`))).allowed).toBe(true);
    expect(limiter.size).toBe(1_000);
    await limiter.flush();
    expect(limiter.size).toBe(0);
    expect(await t.cache.get("rl:mem:k7")).toBe("1");
    // A forgotten key counts on from what Redis holds.
    await limiter.check(rule("k7"));
    await limiter.flush();
    expect(await t.cache.get("rl:mem:k7")).toBe("2");

    const near: boolean[] = [];
    for (let i = 0; i < 6; i++) near.push((await limiter.check(rule("hot", 4))).allowed);
    expect(near).toEqual([true, true, true, true, false, false]);
    await limiter.flush();
    expect(limiter.size).toBe(1);
    expect((await limiter.check(rule("hot", 4))).allowed).toBe(false);
  });
});

describe("changes reach every instance at once (Redis pub/sub)", () => {
  test("a ban made in one instance is answered by the other, which had the key cached", async () => {
    const t = await createTestShop();
    closers.push(t.close);
    const peer = await peerOf(t);
    const key = await soldKey(t, P);
    expect((await auth(t, P, { key, uuid: "PC" })).status).toBe(200);
    const viaPeer = () =>
      peer.request(`/api/${P}/auth?key=${key}&uuid=PC`).then(async (r) => ({ status: r.status, body: await r.json() }));
    expect((await viaPeer()).status).toBe(200);
    expect(peer.shop.authCache.get(P, key)).not.toBeNull();

    await t.shop.keys.setBanned({ key }, true);
    // Well inside the cache's 10 s TTL: the announcement, not the expiry, made the difference.
    await eventually(async () => (await viaPeer()).status === 403, 5_000);
    expect(await viaPeer()).toEqual(KEY_BANNED);
  });

  test("an HWID reset made in one instance lets the new PC bind through the other, expiry unchanged", async () => {
    const t = await createTestShop();
    closers.push(t.close);
    const peer = await peerOf(t);
    const key = await soldKey(t, P, 14);
    const first = await auth(t, P, { key, uuid: "OLD" });
    const viaPeer = async (uuid: string) => {
      const r = await peer.request(`/api/${P}/auth?key=${key}&uuid=${uuid}`);
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    expect(await viaPeer("NEW")).toEqual(HWID_MISMATCH);
    await t.shop.keys.resetHwid({ key });
    await eventually(async () => peer.shop.authCache.get(P, key) === null, 5_000);
    const bound = await viaPeer("NEW");
    expect(bound.status).toBe(200);
    expect(bound.body.expires_at).toBe(first.body.expires_at);
  });

  test("20 first activations split over two instances: exactly one binds", async () => {
    const t = await createTestShop();
    closers.push(t.close);
    const peer = await peerOf(t);
    const key = await soldKey(t, P);
    const answers = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const path = `/api/${P}/auth?key=${key}&uuid=PC-${i}`;
        const res = await (i % 2 ? peer.request(path) : t.request(path));
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      }),
    );
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    expect(answers.filter((a) => a.body.message === "HWID mismatch")).toHaveLength(19);
  });
});
