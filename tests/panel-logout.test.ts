import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Redis } from "ioredis";
import { RedisCache } from "../src/cache/cache.ts";
import { buildHttpApp } from "../src/server.ts";
import { createShop } from "../src/shop/index.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database can take seconds on a loaded CI machine.
setDefaultTimeout(30_000);

/**
 * Logout is for good: the ended session is recorded in PostgreSQL, so a copy of the cookie (stolen, or left in
 * another browser) stays useless whatever happens to Redis; and when the end cannot be recorded, the owner is
 * told so instead of being shown the login page as if it had worked.
 */
let t: TestShop;
let password: string;

beforeAll(async () => {
  t = await createTestShop();
  ({ password } = await t.shop.accounts.reset("admin"));
});
afterAll(async () => {
  await t.close();
});

/** A logged-in client and a copy of its session cookie, as a thief would keep it. */
async function loggedIn(request = t.request): Promise<{ c: PanelClient; stolen: string }> {
  const c = new PanelClient({ config: t.config, request });
  expect((await c.login("admin", password)).status).toBe(303);
  await c.page("/settings");
  return { c, stolen: c.cookies.get("mph_session")! };
}

async function replay(stolen: string, request = t.request): Promise<number> {
  const thief = new PanelClient({ config: t.config, request });
  thief.cookies.set("mph_session", stolen);
  return (await thief.get("/settings")).status;
}

describe("logout", () => {
  test("a logged-out session stays ended after Redis is flushed", async () => {
    const { c, stolen } = await loggedIn();
    expect(await replay(stolen)).toBe(200);
    expect((await c.post("/logout")).status).toBe(303);
    expect(await replay(stolen)).toBe(303);

    const redis = new Redis(t.redisUrl);
    const keys = await redis.keys(`${t.redisPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    expect(await replay(stolen)).toBe(303);
  });

  test("logout while Redis is down still ends the session, in this process and in any other", async () => {
    // This process's shop talks to a Redis that is not there; another process uses the real one.
    const cache = new RedisCache("redis://127.0.0.1:1", t.redisPrefix);
    const shop = createShop({ sql: t.sql, cache, config: t.config });
    const app = buildHttpApp(shop, t.config);
    const offline = (path: string, init?: RequestInit) =>
      app.handle(new Request(`http://localhost/Morpheus%20Private${path}`, init));
    try {
      const { c, stolen } = await loggedIn(offline);
      const out = await c.post("/logout");
      expect(out.status).toBe(303);
      expect(await replay(stolen, offline)).toBe(303);
      expect(await replay(stolen)).toBe(303);
    } finally {
      await cache.close();
    }
  });

  test("a logout that cannot be recorded says so, keeps the cookie, and the next try ends the session", async () => {
    const { c, stolen } = await loggedIn();
    // The disk is full: reading works, writing the ended session does not.
    await t.sql.unsafe(`
      create function refuse_write() returns trigger language plpgsql as
        $$ begin raise exception 'could not extend file' using errcode = '53100'; end $$;
      create trigger refuse_write before insert on panel_revoked_sessions
        for each row execute function refuse_write();`);
    try {
      const failed = await c.post("/logout");
      expect(failed.status).toBe(503);
      const html = await failed.text();
      expect(html).toContain("Выход не выполнен");
      expect(html).toContain("сессия остаётся действующей");
      expect(failed.headers.getSetCookie().some((l) => l.startsWith("mph_session="))).toBe(false);
      // Nothing pretended: the session is still the owner's (and the thief's).
      expect(await replay(stolen)).toBe(200);

      const htmx = await c.post("/logout", {}, { htmx: true });
      expect(htmx.status).toBe(503);
      expect(htmx.headers.get("hx-retarget")).toBe("#panel-alert");
      expect(htmx.headers.get("hx-redirect")).toBeNull();
    } finally {
      await t.sql.unsafe("drop trigger refuse_write on panel_revoked_sessions; drop function refuse_write();");
    }
    expect((await c.post("/logout")).status).toBe(303);
    expect(await replay(stolen)).toBe(303);
  });
});
