import { afterAll, beforeAll, describe, expect, setDefaultTimeout, spyOn, test } from "bun:test";
import { jwt } from "@elysiajs/jwt";
import { Elysia } from "elysia";
import { setLogLevel } from "../src/lib/log.ts";
import { buildHttpApp } from "../src/server.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

let t: TestShop;
let password: string;

beforeAll(async () => {
  t = await createTestShop();
  ({ password } = await t.shop.accounts.reset("admin"));
});
afterAll(async () => {
  await t.close();
});

/** A token signed with the shop's secret but with claims of our choosing (what a forger with the secret could do). */
async function signed(claims: Record<string, string | number>): Promise<string> {
  const app = new Elysia().use(jwt({ name: "j", secret: t.config.sessionSecret! })).get("/", ({ j }) => j.sign(claims));
  return await (await app.handle(new Request("http://localhost/"))).text();
}

describe("panel login", () => {
  test("BASE_PATH/ without a session shows the login form and a pre-login cookie scoped to the panel", async () => {
    const c = new PanelClient(t);
    for (const path of ["", "/"]) {
      const res = await c.get(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/html");
      const html = await res.text();
      expect(html).toContain("Вход в панель");
      expect(html).toContain('name="_csrf"');
      const cookie = res.headers.getSetCookie().find((l) => l.startsWith("mph_login="))!;
      expect(cookie).toContain("Path=/Morpheus%20Private");
      expect(cookie).toContain("HttpOnly");
      expect(cookie).toContain("SameSite=Strict");
    }
  });

  test("the right password starts a session: HttpOnly, SameSite=Strict, scoped to BASE_PATH, then the dashboard", async () => {
    const c = new PanelClient(t);
    const res = await c.login("admin", password);
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/Morpheus%20Private/");
    const cookie = res.headers.getSetCookie().find((l) => l.startsWith("mph_session="))!;
    expect(cookie).toContain("Path=/Morpheus%20Private");
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).toMatch(/Max-Age=\d+/);
    expect(cookie).not.toContain("Secure");
    const page = await c.page("/");
    expect(page.html).toContain("<h1>Главная</h1>");
    expect(page.html).toContain("Выручка за 30 дней");
  });

  test("htmx login answers HX-Redirect (a full load, so <body> gets the session's CSRF token)", async () => {
    const c = new PanelClient(t);
    await c.page("/");
    const res = await c.post("/login", { login: "admin", password, _csrf: c.csrf }, { htmx: true, csrf: false });
    expect(res.status).toBe(200);
    expect(res.headers.get("hx-redirect")).toBe("/Morpheus%20Private/");
  });

  test("after login the owner lands on the page they asked for, but never on another site", async () => {
    const c = new PanelClient(t);
    const wanted = await c.get("/orders?status=paid");
    expect(wanted.status).toBe(303);
    expect(wanted.headers.get("location")).toBe(
      `/Morpheus%20Private/?next=${encodeURIComponent("/Morpheus%20Private/orders?status=paid")}`,
    );
    await c.page(`/?next=${encodeURIComponent("/Morpheus%20Private/orders?status=paid")}`);
    const res = await c.post("/login", { login: "admin", password, next: "/Morpheus%20Private/orders?status=paid" });
    expect(res.headers.get("location")).toBe("/Morpheus%20Private/orders?status=paid");

    const d = new PanelClient(t);
    await d.page("/");
    const evil = await d.post("/login", { login: "admin", password, next: "//evil.example/" });
    expect(evil.headers.get("location")).toBe("/Morpheus%20Private/");
  });

  test("a `next` with non-ASCII characters or a line separator lands on that page, percent-encoded, never a 500", async () => {
    for (const [next, location] of [
      ["/Morpheus%20Private/products?q=й", "/Morpheus%20Private/products?q=%D0%B9"],
      ["/Morpheus%20Private/users/\u2028", "/Morpheus%20Private/users/%E2%80%A8"],
      ["/Morpheus%20Private/../elsewhere", "/Morpheus%20Private/"],
    ] as const) {
      const c = new PanelClient(t);
      // As a browser sends it from the login page it was given: the page itself must render first.
      const page = await c.page(`/?next=${encodeURIComponent(next)}`);
      expect(page.status).toBe(200);
      const res = await c.post("/login", { login: "admin", password, next });
      expect({ next, status: res.status, location: res.headers.get("location") }).toEqual({
        next,
        status: 303,
        location,
      });
      expect((await c.get("/products")).status).toBe(200);
    }
  });

  test("a login post without the login page's CSRF token is refused", async () => {
    const c = new PanelClient(t);
    await c.page("/");
    const res = await c.post("/login", { login: "admin", password }, { csrf: false });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("Страница входа устарела");
    expect(res.headers.getSetCookie().some((l) => l.startsWith("mph_session="))).toBe(false);
  });

  test("cookies are Secure when PUBLIC_URL is https", async () => {
    const app = buildHttpApp(t.shop, { ...t.config, publicUrl: "https://shop.example" });
    const res = await app.handle(new Request("http://localhost/Morpheus%20Private/"));
    expect(res.headers.getSetCookie().find((l) => l.startsWith("mph_login="))).toContain("Secure");
  });
});

describe("brute force", () => {
  let server: ReturnType<typeof Bun.serve> | null = null;
  let base = "";
  let s: TestShop;

  beforeAll(async () => {
    // A real socket, so the client address comes from X-Forwarded-For sent through a trusted (local) proxy.
    s = await createTestShop({ trustedProxies: ["127.0.0.1", "::1"] });
    await s.shop.accounts.reset("owner");
    await s.shop.accounts.reset("second");
    const app = buildHttpApp(s.shop, s.config);
    app.listen({ hostname: "127.0.0.1", port: 0 });
    server = app.server as ReturnType<typeof Bun.serve>;
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(async () => {
    await server?.stop(true);
    await s.close();
  });

  const from = (ip: string) =>
    new PanelClient(
      {
        config: s.config,
        request: (path, init) => fetch(`${base}/Morpheus%20Private${path}`, { ...init, redirect: "manual" }),
      },
      { "x-forwarded-for": ip },
    );

  test("five wrong passwords from one IP are refused as wrong, the sixth try is rate-limited even if right", async () => {
    const c = from("203.0.113.5");
    for (let i = 0; i < 5; i++) {
      const res = await c.login(i % 2 ? "owner" : `nobody-${i}`, "wrong-password");
      expect(res.status).toBe(401);
      expect(await res.text()).toContain("Неверный логин или пароль.");
    }
    const { password: right } = await s.shop.accounts.reset("owner");
    const sixth = await c.login("owner", right);
    expect(sixth.status).toBe(429);
    expect(await sixth.text()).toContain("Слишком много неудачных попыток входа");
    expect(sixth.headers.getSetCookie().some((l) => l.startsWith("mph_session="))).toBe(false);
    // Another address is not affected.
    const other = await from("203.0.113.6").login("owner", right);
    expect(other.status).toBe(303);
  });

  test("30 wrong passwords sent at once from one IP: 5 are checked, 25 are rate-limited", async () => {
    await s.shop.accounts.reset("parallel");
    const clients = await Promise.all(
      Array.from({ length: 30 }, async () => {
        const c = from("203.0.113.44");
        await c.page("/");
        return c;
      }),
    );
    const answers = await Promise.all(
      clients.map((c, i) => c.post("/login", { login: "parallel", password: `guess-${i}` })),
    );
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses.filter((st) => st === 401)).toHaveLength(5);
    expect(statuses.filter((st) => st === 429)).toHaveLength(25);
  });

  test("five wrong passwords for one login from different IPs: an address that failed is refused for it, a clean one is not", async () => {
    const { password: right } = await s.shop.accounts.reset("second");
    for (let i = 0; i < 5; i++) {
      const res = await from(`198.51.100.${i + 1}`).login("second", "nope-nope");
      expect(res.status).toBe(401);
    }
    const failedBefore = await from("198.51.100.1").login("second", right);
    expect(failedBefore.status).toBe(429);
    expect(await failedBefore.text()).toContain("bun run cli admin:reset");
    expect((await from("198.51.100.77").login("second", right)).status).toBe(303);
    const { password: ownerPassword } = await s.shop.accounts.reset("owner");
    expect((await from("198.51.100.2").login("owner", ownerPassword)).status).toBe(303);
  });

  test("a failed or refused login is logged with whether the login exists and its length, never the typed text", async () => {
    const lines: string[] = [];
    setLogLevel("warn");
    const spy = spyOn(console, "error").mockImplementation((line: unknown) => {
      lines.push(String(line));
    });
    try {
      // A password typed into the login field by mistake, then the real login with a wrong password.
      const typo = "Tr0ub4dor-and-3";
      expect((await from("192.0.2.10").login(typo, "whatever")).status).toBe(401);
      expect((await from("192.0.2.11").login("owner", "wrong-password")).status).toBe(401);
      for (let i = 0; i < 5; i++) await from("192.0.2.12").login(typo, "whatever");
      const failed = lines.filter((l) => l.includes("panel login failed")).map((l) => JSON.parse(l));
      expect(failed[0]).toMatchObject({ ip: "192.0.2.10", loginExists: false, loginLength: typo.length });
      expect(failed[1]).toMatchObject({ ip: "192.0.2.11", loginExists: true, loginLength: 5 });
      expect(lines.some((l) => l.includes("panel login refused: too many failures"))).toBe(true);
      expect(lines.filter((l) => l.includes("panel login")).length).toBeGreaterThanOrEqual(3);
      for (const line of lines) {
        expect(line).not.toContain(typo);
        expect(line).not.toContain('"login"');
      }
    } finally {
      spy.mockRestore();
      setLogLevel("error");
    }
  });
});

describe("pages behind the login", () => {
  test("without a cookie a page redirects to the login page (303), htmx gets HX-Redirect", async () => {
    const c = new PanelClient(t);
    const res = await c.get("/products");
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toStartWith("/Morpheus%20Private/?next=");
    const hx = await c.get("/users", { htmx: "partial", target: "div#users-list" });
    expect(hx.headers.get("hx-redirect")).toStartWith("/Morpheus%20Private/");
  });

  test("a tampered, forged or expired session cookie redirects to the login page and is cleared", async () => {
    const c = new PanelClient(t);
    await c.login("admin", password);
    const good = c.cookies.get("mph_session")!;
    expect((await c.get("/products")).status).toBe(200);

    const [head, body, sig] = good.split(".");
    const claims = JSON.parse(Buffer.from(body!, "base64url").toString());
    const tamperedBody = Buffer.from(JSON.stringify({ ...claims, sub: "999" })).toString("base64url");
    const account = (await t.shop.accounts.byId(Number(claims.sub)))!;
    const now = Math.floor(Date.now() / 1000);
    const variants = {
      "tampered payload": `${head}.${tamperedBody}.${sig}`,
      "tampered signature": `${head}.${body}.${sig!.slice(0, -2)}xx`,
      garbage: "not-a-token",
      "JSON cookie": '{"sub":"1"}',
      expired: await signed({ ...claims, exp: now - 60 }),
      "older than 7 days": await signed({ ...claims, auth: now - 8 * 86_400, exp: now + 3600 }),
      "password changed since": await signed({ ...claims, pwc: account.passwordChangedAt.getTime() - 1000 }),
    };
    for (const [name, value] of Object.entries(variants)) {
      const d = new PanelClient(t);
      d.cookies.set("mph_session", value);
      const res = await d.get("/products");
      expect({ name, status: res.status }).toEqual({ name, status: 303 });
      expect(res.headers.get("location")).toStartWith("/Morpheus%20Private/");
    }
    // The same checks keep BASE_PATH/ on the login form.
    const d = new PanelClient(t);
    d.cookies.set("mph_session", variants.expired);
    expect((await d.page("/")).html).toContain("Вход в панель");
  });

  test("logout ends the session: the old cookie no longer opens the panel", async () => {
    const c = new PanelClient(t);
    await c.login("admin", password);
    await c.page("/settings");
    const stolen = c.cookies.get("mph_session")!;
    const res = await c.post("/logout");
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/Morpheus%20Private/");
    expect(res.headers.getSetCookie().find((l) => l.startsWith("mph_session="))).toContain("Max-Age=0");
    const replay = new PanelClient(t);
    replay.cookies.set("mph_session", stolen);
    expect((await replay.get("/settings")).status).toBe(303);
  });
});

describe("CSRF", () => {
  test("a POST without the CSRF token is refused and changes nothing; with it, it works", async () => {
    const c = new PanelClient(t);
    await c.login("admin", password);
    await c.page("/settings");
    const before = await t.shop.settings.load();
    expect(before.botEnabled).toBe(false);

    const bare = await c.post("/settings/bot", { botEnabled: "on" }, { csrf: false });
    expect(bare.status).toBe(403);
    expect(await bare.text()).toContain("CSRF");
    const bareHtmx = await c.post("/settings/bot", { botEnabled: "on" }, { csrf: false, htmx: true });
    expect(bareHtmx.status).toBe(403);
    expect((await t.shop.settings.load()).botEnabled).toBe(false);

    // A token of another session is worthless here.
    const other = new PanelClient(t);
    await other.login("admin", password);
    await other.page("/settings");
    const foreign = await c.post("/settings/bot", { botEnabled: "on" }, { csrf: other.csrf, htmx: true });
    expect(foreign.status).toBe(403);
    expect((await t.shop.settings.load()).botEnabled).toBe(false);

    const ok = await c.post("/settings/bot", { botEnabled: "on" }, { htmx: true });
    expect(ok.status).toBe(200);
    expect((await t.shop.settings.load()).botEnabled).toBe(true);
    await t.shop.settings.update({ botEnabled: false });
  });
});

describe("change password", () => {
  test("wrong current password and mismatched repeat show errors next to the fields", async () => {
    const c = new PanelClient(t);
    await c.login("admin", password);
    await c.page("/account");
    const wrong = await c.post(
      "/account/password",
      { current: "nope", next: "a-new-password-1", repeat: "a-new-password-1" },
      { htmx: true },
    );
    expect(wrong.status).toBe(422);
    const html = await wrong.text();
    expect(html).toContain('id="e-current"');
    expect(html).toContain("Текущий пароль неверен");
    expect(html).not.toContain("<html");

    const mismatch = await c.post(
      "/account/password",
      { current: password, next: "a-new-password-1", repeat: "a-new-password-2" },
      { htmx: true },
    );
    expect(mismatch.status).toBe(422);
    expect(await mismatch.text()).toContain("Пароли не совпадают");

    const short = await c.post("/account/password", { current: password, next: "short", repeat: "short" });
    expect(short.status).toBe(422);
    const page = await short.text();
    expect(page).toContain("<html");
    expect(page).toContain("от 10 до 200 символов");
  });

  test("a new password works at once, keeps this session and ends the others", async () => {
    const c = new PanelClient(t);
    await c.login("admin", password);
    await c.page("/account");
    const elsewhere = new PanelClient(t);
    await elsewhere.login("admin", password);
    expect((await elsewhere.get("/orders")).status).toBe(200);

    const next = "correct horse battery staple";
    const res = await c.post("/account/password", { current: password, next, repeat: next }, { htmx: true });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("Пароль изменён");
    password = next;

    expect((await c.get("/orders")).status).toBe(200);
    expect((await elsewhere.get("/orders")).status).toBe(303);
    expect((await new PanelClient(t).login("admin", next)).status).toBe(303);
  });
});

describe("one guard for the whole panel", () => {
  test("every panel route but the entry ones sends a visitor without a session to the login page", async () => {
    const base = encodeURI(t.config.basePath);
    // The routes that answer without a session: the login page or dashboard, the login form, static files, and
    // what answers machines (the licence API, AnyPay, the health check).
    const open = new Set(["", "/", "/login", "/static/:name", "/healthz"]);
    const panelRoutes = t.app.routes
      .map((r) => ({ method: r.method, path: r.path.slice(t.config.basePath.length) }))
      .filter((r) => !open.has(r.path) && !r.path.startsWith("/api/") && !r.path.startsWith("/payments/"));
    // Every tab's routes are there (a sample), so the loop below really walks the panel.
    for (const path of ["/settings", "/broadcasts", "/admins", "/users/:id", "/products/:id/keys", "/orders/:id"]) {
      expect(panelRoutes.map((r) => r.path)).toContain(path);
    }
    expect(panelRoutes.length).toBeGreaterThan(30);
    for (const route of panelRoutes) {
      const path = route.path.replace(/:\w+/g, "1");
      const res = await t.request(path, {
        method: route.method,
        body: route.method === "POST" ? new URLSearchParams({ x: "1" }) : undefined,
      });
      expect({ route: `${route.method} ${route.path}`, status: res.status }).toEqual({
        route: `${route.method} ${route.path}`,
        status: 303,
      });
      expect(res.headers.get("location")).toStartWith(`${base}/`);
    }
  });
});
