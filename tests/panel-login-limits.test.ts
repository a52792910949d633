import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { RedisCache } from "../src/cache/cache.ts";
import type { Config } from "../src/config.ts";
import { buildHttpApp } from "../src/server.ts";
import { createShop, type Shop } from "../src/shop/index.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { cleanEnv, runToEnd } from "./helpers/process.ts";
import { freePort } from "./helpers/servers.ts";
import { createTestShop, type TestShop, testConfig, testDatabase } from "./helpers/shop.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

/**
 * The panel's brute-force limits as an attacker and the owner meet them: per address, per login (without letting a
 * stranger who knows the login keep the owner out), on the change-password form, after `admin:reset`, and while
 * Redis is away.
 */

type Served = { from: (ip: string) => PanelClient; stop: () => Promise<void> };

/** The shop's HTTP app on a real socket, so each client's address comes from X-Forwarded-For via the local proxy. */
function serve(shop: Shop, config: Config): Served {
  const app = buildHttpApp(shop, config);
  app.listen({ hostname: "127.0.0.1", port: 0 });
  const base = `http://127.0.0.1:${app.server!.port}`;
  return {
    from: (ip) =>
      new PanelClient(
        {
          config,
          request: (path, init) => fetch(`${base}/Morpheus%20Private${path}`, { ...init, redirect: "manual" }),
        },
        { "x-forwarded-for": ip },
      ),
    stop: async () => {
      await app.stop(true);
    },
  };
}

const TRUST_LOCAL_PROXY = { trustedProxies: ["127.0.0.1", "::1"] };

describe("with Redis", () => {
  let t: TestShop;
  let s: Served;

  beforeAll(async () => {
    t = await createTestShop(TRUST_LOCAL_PROXY);
    s = serve(t.shop, t.config);
  });
  afterAll(async () => {
    await s.stop();
    await t.close();
  });

  /** `bun run cli admin:reset <login>` as the operator runs it, on this shop's database and Redis namespace. */
  async function cliReset(login: string): Promise<string> {
    const env = cleanEnv({
      DATABASE_URL: t.databaseUrl,
      REDIS_URL: t.redisUrl,
      REDIS_PREFIX: t.redisPrefix,
      DATA_DIR: t.config.dataDir,
      LOG_LEVEL: "error",
    });
    const r = await runToEnd(["bun", "src/cli.ts", "admin:reset", login], env);
    const password = /^password: (\S+)$/m.exec(r.out)?.[1];
    if (r.code !== 0 || !password) throw new Error(`admin:reset failed (${r.code}): ${r.out}\n${r.err}`);
    return password;
  }

  test("wrong passwords for the login from many addresses do not keep the owner out of a clean address", async () => {
    const { password } = await t.shop.accounts.reset("owner");
    // Five addresses, one wrong password each: the login is now under attack.
    for (let i = 1; i <= 5; i++) {
      expect((await s.from(`198.51.100.${i}`).login("owner", "guess")).status).toBe(401);
    }
    // Twenty more stranger addresses keep trying: each gets its one guess, then is refused for this login.
    for (let i = 10; i < 30; i++) {
      const stranger = s.from(`198.51.100.${i}`);
      expect((await stranger.login("owner", "guess")).status).toBe(401);
      const again = await stranger.login("owner", "guess-2");
      expect(again.status).toBe(429);
      expect(await again.text()).toContain("Слишком много неудачных попыток входа в эту учётную запись");
    }
    // The owner, at an address of their own with no failures, logs in with the right password.
    const owner = s.from("192.0.2.200");
    const res = await owner.login("owner", password);
    expect(res.status).toBe(303);
    expect((await owner.page("/")).html).toContain("<h1>Главная</h1>");
  });

  test("an address that failed while the login is under attack is refused even with the right password", async () => {
    const { password } = await t.shop.accounts.reset("clerk");
    for (let i = 1; i <= 5; i++) await s.from(`203.0.113.${i}`).login("clerk", "guess");
    const typo = s.from("203.0.113.50");
    expect((await typo.login("clerk", "typo")).status).toBe(401);
    const refused = await typo.login("clerk", password);
    expect(refused.status).toBe(429);
    const html = await refused.text();
    expect(html).toContain("Подождите 15 мин.");
    expect(html).toContain("bun run cli admin:reset");
    expect(refused.headers.getSetCookie().some((l) => l.startsWith("mph_session="))).toBe(false);
    // Another login is not affected from the same address.
    const { password: other } = await t.shop.accounts.reset("other");
    expect((await typo.login("other", other)).status).toBe(303);
  });

  test("after `bun run cli admin:reset` the new password logs in at once, from the address that was refused", async () => {
    await t.shop.accounts.reset("boss");
    const here = s.from("192.0.2.77");
    for (let i = 1; i <= 5; i++) await s.from(`192.0.2.${i}`).login("boss", "guess");
    expect((await here.login("boss", "typo")).status).toBe(401);
    const before = await here.login("boss", "still wrong");
    expect(before.status).toBe(429);
    expect(await before.text()).toContain("admin:reset");

    const fresh = await cliReset("boss");
    const after = await here.login("boss", fresh);
    expect(after.status).toBe(303);
  });

  test("the sixth wrong password from one address is refused with a wait that admin:reset cannot shorten", async () => {
    const c = s.from("203.0.113.99");
    for (let i = 0; i < 5; i++) expect((await c.login(`nobody-${i}`, "wrong")).status).toBe(401);
    const { password } = await t.shop.accounts.reset("admin");
    const sixth = await c.login("admin", password);
    expect(sixth.status).toBe(429);
    // The notice itself (the page's footer hint names admin:reset for first-time setup).
    const notice = /<div class="notice notice-error" role="alert">(.*?)<\/div>/.exec(await sixth.text())?.[1];
    expect(notice).toContain("Слишком много неудачных попыток входа с этого адреса. Подождите 15 мин.");
    expect(notice).not.toContain("admin:reset");
  });

  test("change password: five wrong current passwords, then even the right one is refused for a while", async () => {
    const { password } = await t.shop.accounts.reset("keeper");
    const c = s.from("192.0.2.150");
    expect((await c.login("keeper", password)).status).toBe(303);
    await c.page("/account");
    const change = (current: string) =>
      c.post(
        "/account/password",
        { current, next: "a-brand-new-password", repeat: "a-brand-new-password" },
        { htmx: true },
      );
    for (let i = 0; i < 5; i++) {
      const wrong = await change(`guess-${i}`);
      expect(wrong.status).toBe(422);
      expect(await wrong.text()).toContain("Текущий пароль неверен");
    }
    const sixth = await change(password);
    expect(sixth.status).toBe(429);
    const html = await sixth.text();
    expect(html).toContain('id="e-current"');
    expect(html).toContain("Слишком много неверных попыток ввести текущий пароль. Подождите 15 мин.");
    // Nothing changed: the old password still logs in, the new one does not.
    expect((await s.from("192.0.2.151").login("keeper", "a-brand-new-password")).status).toBe(401);
    expect((await s.from("192.0.2.152").login("keeper", password)).status).toBe(303);

    // admin:reset clears this count too: with the new password the form works again.
    const fresh = await cliReset("keeper");
    const d = s.from("192.0.2.153");
    expect((await d.login("keeper", fresh)).status).toBe(303);
    await d.page("/account");
    const ok = await d.post(
      "/account/password",
      { current: fresh, next: "a-brand-new-password", repeat: "a-brand-new-password" },
      { htmx: true },
    );
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("Пароль изменён");
  });
});

describe("while Redis is away", () => {
  let shop: Shop;
  let s: Served;
  let cache: RedisCache;
  let end: () => Promise<void>;

  beforeAll(async () => {
    const db = await testDatabase();
    // Nothing listens on this port: every cache call fails at once, as in an outage.
    cache = new RedisCache(`redis://127.0.0.1:${freePort()}`, "mph-down:");
    const config = testConfig({ databaseUrl: db.url, ...TRUST_LOCAL_PROXY });
    shop = createShop({ sql: db.sql, cache, config });
    s = serve(shop, config);
    end = async () => {
      await s.stop();
      await cache.close();
      await db.sql.end({ timeout: 2 });
    };
  });
  afterAll(async () => {
    await end();
  });

  test("the login still refuses the sixth try from one address (counted in the process), with the same message", async () => {
    const { password } = await shop.accounts.reset("admin");
    const c = s.from("203.0.113.5");
    for (let i = 0; i < 5; i++) {
      const res = await c.login("admin", `wrong-${i}`);
      expect(res.status).toBe(401);
      expect(await res.text()).toContain("Неверный логин или пароль.");
    }
    const sixth = await c.login("admin", password);
    expect(sixth.status).toBe(429);
    expect(await sixth.text()).toContain("Слишком много неудачных попыток входа с этого адреса");
    // The owner from another address still gets in: the outage did not turn the limit into a lock.
    expect((await s.from("203.0.113.6").login("admin", password)).status).toBe(303);
  });

  test("the change-password limit holds too", async () => {
    const { password } = await shop.accounts.reset("second");
    const c = s.from("203.0.113.20");
    expect((await c.login("second", password)).status).toBe(303);
    await c.page("/account");
    for (let i = 0; i < 5; i++) {
      const res = await c.post("/account/password", {
        current: `x-${i}`,
        next: "0123456789ab",
        repeat: "0123456789ab",
      });
      expect(res.status).toBe(422);
    }
    const sixth = await c.post("/account/password", {
      current: password,
      next: "0123456789ab",
      repeat: "0123456789ab",
    });
    expect(sixth.status).toBe(429);
    expect(await sixth.text()).toContain("Слишком много неверных попыток ввести текущий пароль");
  });

  test("the licence API keeps failing open: a loader is answered, not rate-limited", async () => {
    const product = await shop.products.create({ name: "Down" });
    await shop.keys.generate(product.id, 1, 1);
    const sold = await shop.keys.issue(product.id, 1);
    const app = buildHttpApp(shop, testConfig({ authLimitPerIp: 1, authLimitPerKey: 1 }));
    for (let i = 0; i < 3; i++) {
      const res = await app.handle(
        new Request(`http://localhost/Morpheus%20Private/api/Down/auth?key=${sold.key}&uuid=PC-1`),
      );
      expect(res.status).toBe(200);
    }
  });
});
