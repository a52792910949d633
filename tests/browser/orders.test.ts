import { afterAll, beforeAll, expect, spyOn, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { TEST_TOKEN } from "../helpers/fake-telegram.ts";
import { createPayShop, type PayShop } from "../helpers/payments.ts";

/**
 * The order page's actions in a real browser, under the Content-Security-Policy Caddy sends in production (no
 * inline script, no eval): htmx posts the form with the session's CSRF token, hx-confirm asks with confirm(), and
 * the answer replaces the order in place.
 */

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(import.meta.dir, "..", "artifacts");

let s: PayShop;
let browser: Browser;
let csp: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  await mkdir(ARTIFACTS, { recursive: true });
  const caddyfile = await readFile(join(import.meta.dir, "..", "..", "Caddyfile"), "utf8");
  csp = /Content-Security-Policy "([^"]+)"/.exec(caddyfile)![1]!;
  s = await createPayShop();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await s.stop();
}, 20_000);

test("closing a paid_no_stock order: confirm(), the note, the order swapped in place with the notice", async () => {
  const errors = spyOn(console, "error").mockImplementation(() => {});
  const product = await s.product("Browser", { keys: 1, build: false });
  const buyer = await s.buyer(400_001, "late_buyer");
  const order = await s.placeOrder(buyer, product.id);
  await s.sql`update orders set reserved_until = now() - interval '1 second' where id = ${order.id}`;
  await s.shop.orders.expireDue();
  await s.placeOrder(await s.buyer(400_002), product.id);
  await s.notifier.send(s.notifier.paid(order));
  expect((await s.shop.orders.byId(order.id))?.status).toBe("paid_no_stock");
  const { password } = await s.shop.accounts.reset("admin");

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "ru-RU" });
  // Every panel answer gets Caddy's policy, as behind the real proxy.
  await context.route("**/*", async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, headers: { ...response.headers(), "content-security-policy": csp } });
  });
  const page = await context.newPage();
  const problems: string[] = [];
  const confirms: string[] = [];
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  page.on("dialog", async (dialog) => {
    if (dialog.type() === "confirm") confirms.push(dialog.message());
    await dialog.accept();
  });

  const origin = `http://127.0.0.1:${s.app.server!.port}`;
  const first = await page.goto(`${origin}/Morpheus%20Private/`);
  expect(first?.headers()["content-security-policy"]).toBe(csp);
  await page.fill("#f-login", "admin");
  await page.fill("#f-password", password);
  await page.click("#login-form button[type=submit]");
  await page.locator("main h1", { hasText: "Главная" }).waitFor();
  expect(await page.locator("nav.tabs .tab-badge").textContent()).toBe("1");

  // From the orders tab to the order (a boosted link).
  await page.locator("nav.tabs a", { hasText: "Заказы" }).click();
  await page.locator("main h1", { hasText: "Заказы" }).waitFor();
  await page.locator(`#orders-list a[href$="/orders/${order.id}"]`).click();
  await page.locator("main h1", { hasText: `Заказ #${order.id}` }).waitFor();
  const url = page.url();

  await page.fill("#f-note", "деньги возвращены в AnyPay");
  await page.click("#close button[type=submit]");
  await page.locator("#order .notice-ok", { hasText: "Заказ закрыт" }).waitFor({ timeout: 10_000 });
  expect(confirms).toEqual(["Закрыть заказ? Новые ключи этому покупателю больше не придут."]);
  expect(page.url()).toBe(url);
  // The badge on the tab went with it (swapped out of band).
  expect(await page.locator("nav.tabs .tab-badge").count()).toBe(0);
  expect(await page.locator("#order .badge", { hasText: "Закрыт без ключа" }).count()).toBe(1);
  expect(await s.shop.orders.byId(order.id)).toMatchObject({
    status: "failed",
    failure: "деньги возвращены в AnyPay",
  });
  await page.screenshot({ path: join(ARTIFACTS, "order-desktop.png"), fullPage: true });
  expect(problems).toEqual([]);
  await context.close();
  errors.mockRestore();
}, 30_000);

test("giving Stars back: confirm(), Telegram asked once, the order swapped in place, closed, and the badge gone", async () => {
  const errors = spyOn(console, "error").mockImplementation(() => {});
  const product = await s.product("Stars Browser", { keys: 1, build: false });
  await s.shop.products.setStarsPrice(product.id, 30, 150);
  const buyer = await s.buyer(400_011, "stars_buyer");
  const order = await s.placeOrder(buyer, product.id);
  expect(order.stars).toBe(150);
  await s.sql`update orders set reserved_until = now() - interval '1 second' where id = ${order.id}`;
  await s.shop.orders.expireDue();
  await s.placeOrder(await s.buyer(400_012), product.id);
  // Telegram took the Stars after the reservation ran out and the last key went to someone else.
  const { chargeId } = s.tg.successfulPayment(
    TEST_TOKEN,
    { id: buyer, first_name: "Stars" },
    { payload: "-", total_amount: 150 },
  );
  const paid = await s.payments.stars.receive({
    kind: "paid",
    userId: buyer,
    currency: "XTR",
    totalAmount: 150,
    payload: String(order.id),
    chargeId,
  });
  expect(paid.ok).toBe(true);
  expect((await s.shop.orders.byId(order.id))?.status).toBe("paid_no_stock");
  const { password } = await s.shop.accounts.reset("admin");

  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "ru-RU" });
  await context.route("**/*", async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, headers: { ...response.headers(), "content-security-policy": csp } });
  });
  const page = await context.newPage();
  const problems: string[] = [];
  const confirms: string[] = [];
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  page.on("dialog", async (dialog) => {
    if (dialog.type() === "confirm") confirms.push(dialog.message());
    await dialog.accept();
  });
  const origin = `http://127.0.0.1:${s.app.server!.port}`;
  await page.goto(`${origin}/Morpheus%20Private/`);
  await page.fill("#f-login", "admin");
  await page.fill("#f-password", password);
  await page.click("#login-form button[type=submit]");
  await page.locator("main h1", { hasText: "Главная" }).waitFor();
  await page.goto(`${origin}/Morpheus%20Private/orders/${order.id}`);
  await page.locator("main h1", { hasText: `Заказ #${order.id}` }).waitFor();
  // The order waiting for a key is the one thing on the Заказы tab's badge.
  expect(await page.locator("nav.tabs .tab-badge").textContent()).toBe("1");

  await page.locator("#payments button", { hasText: "Вернуть звёзды" }).click();
  await page.locator("#order .notice-ok", { hasText: "Звёзды возвращены покупателю" }).waitFor({ timeout: 10_000 });
  expect(confirms).toEqual(["Вернуть покупателю 150 ⭐? Telegram вернёт звёзды сразу, отменить возврат нельзя."]);
  expect(await page.locator("#order .notice-ok").textContent()).toBe(
    "Звёзды возвращены покупателю: 150 ⭐. Заказ закрыт: ключ ему больше не уйдёт.",
  );
  expect(await page.locator("#payments button", { hasText: "Вернуть звёзды" }).count()).toBe(0);
  expect(await page.locator("#payments .sub", { hasText: "звёзды возвращены" }).count()).toBe(1);
  expect(await page.locator("nav.tabs .tab-badge").count()).toBe(0);
  expect(s.tg.callsOf("refundStarPayment").map((c) => c.params)).toEqual([
    { user_id: buyer, telegram_payment_charge_id: chargeId },
  ]);
  expect((await s.shop.orders.byId(order.id))?.status).toBe("failed");
  await page.screenshot({ path: join(ARTIFACTS, "order-stars-refund-390.png"), fullPage: true });
  expect(problems).toEqual([]);
  await context.close();
  errors.mockRestore();
}, 30_000);
