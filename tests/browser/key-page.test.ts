import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { auth, HWID_MISMATCH, KEY_BANNED, soldKey } from "../helpers/licence.ts";
import { createTestShop, type TestShop } from "../helpers/shop.ts";
import { credentials, launchBrowser, listen, logIn, see, shoot, watchedPage } from "./helpers.ts";

/**
 * The key page (docs/panel.md#the-key-page) and compensation (docs/panel.md#compensation) clicked in chromium, under
 * the Content-Security-Policy Caddy sends in production: from a product's sold keys to a key's page, a ban from there
 * (confirm(), swapped in place, the loader refused), the timeline, and «Компенсировать» on the product's page; each
 * page at 1280 and 390 px without sideways scrolling.
 */

setDefaultTimeout(60_000);

const PRODUCT = "Браузерный Продукт";

let t: TestShop;
let browser: Browser;
let panelUrl: string;
let csp: string;

beforeAll(async () => {
  const caddyfile = await readFile(join(import.meta.dir, "..", "..", "Caddyfile"), "utf8");
  csp = /Content-Security-Policy "([^"]+)"/.exec(caddyfile)![1]!;
  t = await createTestShop();
  ({ panelUrl } = listen(t));
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await t.app.stop(true);
  await t.close();
});

test("a key's page: reached from the sold keys, a ban acts at once and joins the history, at 390 px too", async () => {
  const key = await soldKey(t, PRODUCT, 30);
  expect((await auth(t, PRODUCT, { key, uuid: "PC-ВЛАДЕЛЕЦ" })).status).toBe(200);
  // A HWID as long as a loader may send, and a note: the page must wrap them on a phone.
  const longUuid = `PC-${"0123456789ABCDEF".repeat(7)}`;
  for (const uuid of ["PC-ДРУГ", "PC-ДРУГ", longUuid])
    expect(await auth(t, PRODUCT, { key, uuid })).toEqual(HWID_MISMATCH);
  await t.shop.licence.flush();
  await t.shop.keys.setNote({ key }, "Покупатель писал в поддержку: сменил видеокарту, просил сбросить привязку");
  const product = (await t.shop.products.byName(PRODUCT))!;

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "ru-RU" });
  await context.route("**/*", async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, headers: { ...response.headers(), "content-security-policy": csp } });
  });
  const w = await watchedPage(context);
  const { page } = w;
  await logIn(page, panelUrl, await credentials(t));

  await page.goto(`${panelUrl}products/${product.id}/keys?list=sold`);
  await page.locator("#key-list a.key", { hasText: key }).click();
  await page.locator("main h1", { hasText: key }).waitFor();
  expect(new URL(page.url()).pathname).toMatch(/\/keys\/\d+$/);
  await see(page, "#key-timeline li", "Активирован на ПК PC-ВЛАДЕЛЕЦ");
  await see(page, "#key-timeline li", "HWID mismatch: чужой ПК PC-ДРУГ — 2 раза");
  await shoot(page, "key");

  await page.locator("#key-main button", { hasText: "Забанить" }).click();
  await see(page, "#key-main .notice-ok", "Ключ забанен.");
  expect(w.confirms).toEqual(["Забанить ключ? Лоадер получит «Key banned»."]);
  await see(page, "#key-timeline li", /Забанен\s*admin, панель/);
  expect(await page.locator("#key-main button", { hasText: "Разбанить" }).count()).toBe(1);
  expect(await auth(t, PRODUCT, { key, uuid: "PC-ВЛАДЕЛЕЦ" })).toEqual(KEY_BANNED);
  await shoot(page, "key-banned");
  expect(w.errors).toEqual([]);
  await context.close();
});

test("«Компенсировать» on a product's page asks first, then says how many keys moved, at 390 px too", async () => {
  const key = await soldKey(t, PRODUCT, 7);
  expect((await auth(t, PRODUCT, { key, uuid: "PC-1" })).status).toBe(200);
  const product = (await t.shop.products.byName(PRODUCT))!;
  const [before] = await t.sql<{ expires_at: Date }[]>`select expires_at from keys where key = ${key}`;

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "ru-RU" });
  const w = await watchedPage(context);
  const { page } = w;
  await logIn(page, panelUrl, await credentials(t));
  await page.goto(`${panelUrl}products/${product.id}`);
  await page.fill("#f-compensate-days", "3");
  await page.locator("#compensate button[type=submit]").click();
  await see(page, "#compensate .notice-ok", "Компенсировано ключей: 1 (каждому +3 дня).");
  expect(w.confirms).toEqual(["Добавить дни всем активным ключам этого продукта? Отменить это нельзя."]);
  const [after] = await t.sql<{ expires_at: Date }[]>`select expires_at from keys where key = ${key}`;
  expect(after!.expires_at.getTime() - before!.expires_at.getTime()).toBe(3 * 86_400_000);
  await shoot(page, "product-compensated");
  expect(w.errors).toEqual([]);
  await context.close();
});
