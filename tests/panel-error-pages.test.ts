import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { buildHttpApp } from "../src/server.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

/**
 * Errors that no panel handler answers — an unknown URL, a body that cannot be parsed — come back as the panel's
 * HTML (a whole page for a browser, a fragment for an htmx swap), while the licence API and AnyPay's notification
 * keep their JSON and plain-text answers.
 */
let t: TestShop;
let c: PanelClient;
let productId: number;

beforeAll(async () => {
  t = await createTestShop();
  const { password } = await t.shop.accounts.reset("admin");
  c = new PanelClient(t);
  await c.login("admin", password);
  await c.page("/");
  productId = (await t.shop.products.create({ name: "Errors" })).id;
});
afterAll(async () => {
  await t.close();
});

const post = (path: string, body: BodyInit, headers: Record<string, string>) =>
  t.request(path, {
    method: "POST",
    body,
    headers: { cookie: [...c.cookies].map(([k, v]) => `${k}=${v}`).join("; "), "x-csrf-token": c.csrf, ...headers },
  });

describe("unknown panel URLs", () => {
  test("a logged-in browser gets a 404 page with the tabs, not JSON", async () => {
    const res = await c.get("/nope");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    const html = await res.text();
    expect(html).toContain("<h1>Не найдено</h1>");
    expect(html).toContain("Такой страницы в панели нет");
    expect(html).toContain('<nav class="tabs"');
    expect(html).toContain("На главную");
  });

  test("an htmx swap gets the error fragment only", async () => {
    const res = await c.get("/products/1/nowhere", { htmx: "partial", target: "#main" });
    expect(res.status).toBe(404);
    const html = await res.text();
    expect(html).toStartWith('<div class="notice notice-error" role="alert">');
    expect(html).toContain("Такой страницы в панели нет");
    // Shown in the alert bar at the top of the page, not in place of whatever the request targeted.
    expect(res.headers.get("hx-retarget")).toBe("#panel-alert");
    expect(res.headers.get("hx-reswap")).toBe("innerHTML");
    expect(html).not.toContain("<html");
  });

  test("a visitor without a session gets the page in the login frame, with the way to the login", async () => {
    const res = await new PanelClient(t).get("/nope/deeper");
    expect(res.status).toBe(404);
    const html = await res.text();
    expect(html).toContain("<h1>Не найдено</h1>");
    expect(html).toContain('href="/Morpheus%20Private/"');
    expect(html).toContain("Ко входу в панель");
    expect(html).not.toContain('<nav class="tabs"');
    expect(html).toContain("panel.css");
  });
});

describe("bodies that cannot be parsed", () => {
  test("a malformed multipart import is a 400 fragment for htmx, with what to do", async () => {
    const res = await post(`/products/${productId}/keys/import`, "--broken\r\nnot multipart at all", {
      "content-type": "multipart/form-data; boundary=zzz",
      "hx-request": "true",
      "hx-request-type": "partial",
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("text/html");
    const html = await res.text();
    expect(html).toContain("Не удалось прочитать отправленные данные");
    expect(html).not.toContain("<html");
  });

  test("malformed JSON posted by a browser is a whole 400 page", async () => {
    const res = await post(`/products/${productId}/description`, "{not json", { "content-type": "application/json" });
    expect(res.status).toBe(400);
    const html = await res.text();
    expect(html).toContain("<h1>Запрос отклонён</h1>");
    expect(html).toContain("Не удалось прочитать отправленные данные");
  });
});

describe("what is not the panel keeps its own format", () => {
  test("the licence API: JSON for an unknown route and for malformed JSON", async () => {
    const unknown = await t.request("/api/Errors/nope");
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ success: false, message: "Not found" });
    const malformed = await t.request("/api/Errors/auth", {
      method: "POST",
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { success: boolean }).success).toBe(false);
  });

  test("AnyPay's notification URL answers as before, and the health check stays JSON", async () => {
    const before = await t.request("/payments/anypay?pay_id=1");
    expect(before.headers.get("content-type") ?? "").not.toContain("text/html");
    const unknownPayments = await t.request("/payments/nope");
    expect(unknownPayments.status).toBe(404);
    expect(await unknownPayments.json()).toEqual({ success: false, message: "Not found" });
    const health = await t.request("/healthz");
    expect(((await health.json()) as { ok: boolean }).ok).toBe(true);
  });

  test("a URL outside BASE_PATH is the plain JSON 404", async () => {
    const res = await t.app.handle(new Request("http://localhost/elsewhere"));
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ success: false, message: "Not found" });
  });

  test("with BASE_PATH at the root, the API still answers JSON and unknown pages are the panel's", async () => {
    const app = buildHttpApp(t.shop, { ...t.config, basePath: "" });
    const api = await app.handle(new Request("http://localhost/api/Errors/nope"));
    expect(await api.json()).toEqual({ success: false, message: "Not found" });
    const page = await app.handle(new Request("http://localhost/nope"));
    expect(page.status).toBe(404);
    expect(await page.text()).toContain("Такой страницы в панели нет");
  });
});
