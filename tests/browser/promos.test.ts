import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { createTestShop, type TestShop } from "../helpers/shop.ts";
import {
  credentials,
  DESKTOP,
  launchBrowser,
  listen,
  logIn,
  openTab,
  see,
  shoot,
  type Watched,
  watchedPage,
} from "./helpers.ts";

/**
 * Промокоды, clicked as the owner clicks them in chromium: a code created (after a refused try), edited, switched
 * off and on again — each page at 1280 and 390 px without sideways scrolling.
 */

let t: TestShop;
let browser: Browser;
let panelUrl: string;
let owner: Watched;

beforeAll(async () => {
  t = await createTestShop();
  const product = await t.shop.products.create({ name: "Stalcraft" });
  await t.shop.products.setPrice(product.id, 30, 1999);
  await t.shop.products.create({ name: "Очень длинное название продукта для узкого экрана телефона" });
  ({ panelUrl } = listen(t));
  const account = await credentials(t);
  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: DESKTOP, locale: "ru-RU" });
  owner = await watchedPage(context);
  await logIn(owner.page, panelUrl, account);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await t.app.stop(true);
  await t.close();
}, 20_000);

describe("Промокоды in a browser", () => {
  test("creating a code: a refused form keeps what was typed, a good one appears in the list", async () => {
    const { page } = owner;
    await openTab(page, "Промокоды");
    await shoot(page, "promos-empty");

    await page.fill("#f-code", "spring25");
    await page.fill("#f-amount", "150");
    await page.click("#promo-form button[type=submit]");
    await see(page, "#promo-form .field-error", "Процент — целое число от 1 до 100");
    expect(await page.inputValue("#f-code")).toBe("spring25");

    await page.fill("#f-amount", "25");
    await page.selectOption("#f-productId", { label: "Stalcraft" });
    await page.check('#promo-form input[name="days"][value="30"]');
    await page.fill("#f-maxUses", "10");
    await page.fill("#f-validUntil", "2030-12-31");
    await page.click("#promo-form button[type=submit]");
    await see(page, "main .notice-ok", "Промокод SPRING25 создан.");
    await see(page, "#promos td", "SPRING25");
    await see(page, "#promos td", "Stalcraft · 30 дней");
    await see(page, "#promos td", "0 из 10");
    expect(await t.shop.promos.byCode("SPRING25")).toMatchObject({
      discount: { percent: 25, rub: null },
      days: [30],
      maxUses: 10,
      maxUsesPerBuyer: 1,
      validUntil: "2030-12-31",
      enabled: true,
    });
    // A second, in roubles, for every product: the list holds both.
    await page.fill("#f-code", "MINUS300");
    await page.fill("#f-amount", "300");
    await page.selectOption('#promo-form select[name="kind"]', "rub");
    await page.click("#promo-form button[type=submit]");
    await see(page, "#promos td", "MINUS300");
    await see(page, "#promos td", "−300 ₽");
    await shoot(page, "promos");
  }, 60_000);

  test("editing a code's terms and switching it off and on again from its page", async () => {
    const { page } = owner;
    await page.locator("#promos a", { hasText: "SPRING25" }).click();
    await page.locator("main h1", { hasText: "SPRING25" }).waitFor();
    await page.fill("#f-amount", "30");
    await page.fill("#f-maxUsesPerBuyer", "");
    await page.click("#promo-form button[type=submit]");
    await see(page, "#promo-form .notice-ok", "Промокод сохранён.");
    expect(await t.shop.promos.byCode("SPRING25")).toMatchObject({
      discount: { percent: 30, rub: null },
      maxUsesPerBuyer: null,
    });
    await shoot(page, "promo");

    await page.locator(".promo-switch button", { hasText: "Выключить" }).click();
    await see(page, "main .notice-ok", "Промокод выключен.");
    expect(owner.confirms).toContain("Выключить промокод SPRING25? Новые покупатели не смогут его применить.");
    await see(page, ".title-row .badge", "выключен");
    expect((await t.shop.promos.byCode("SPRING25"))?.enabled).toBe(false);

    await page.locator(".promo-switch button", { hasText: "Включить" }).click();
    await see(page, "main .notice-ok", "Промокод включён.");
    expect((await t.shop.promos.byCode("SPRING25"))?.enabled).toBe(true);

    await openTab(page, "Промокоды");
    await see(page, "#promos td", "действует");
    expect(owner.errors).toEqual([]);
    expect(owner.alerts).toEqual([]);
  }, 60_000);
});
