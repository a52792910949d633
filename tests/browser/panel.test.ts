import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { createTestShop, type TestShop } from "../helpers/shop.ts";
import {
  ARTIFACTS,
  credentials,
  DESKTOP,
  launchBrowser,
  listen,
  openTab,
  PHONE,
  see,
  shoot,
  watchedPage,
} from "./helpers.ts";

/**
 * The panel in a real browser over a shop with realistic data: log in with the credentials the CLI prints, walk
 * every tab and page (each screenshotted at 1280 and 390 px into tests/artifacts/ — docs/panel.png is one of them —
 * and none scrolling sideways on a phone), and prove the security properties from the outside: names that are
 * scripts show as text, the session cookie's flags, a forged POST, the login's redirect and rate limit. The
 * owner's chores are clicked through in catalogue.test.ts and settings.test.ts.
 */

/** A Telegram first name: the issue's own probe, which must show as text. */
const XSS = "<script>alert(1)</script>";
const BUYER_ID = 700_100_200;

/** Buyers with ordinary names, so the screenshots look like a shop (one buyer with a hostile name among them). */
const BUYERS: { id: number; firstName: string; lastName?: string; username?: string }[] = [
  { id: 700_100_201, firstName: "Алексей", lastName: "Смирнов", username: "alex_smirnov" },
  { id: 700_100_202, firstName: "Мария", lastName: "Кузнецова", username: "masha_k" },
  { id: 700_100_203, firstName: "Дмитрий", username: "dimon_pro" },
  { id: 700_100_204, firstName: "Екатерина", lastName: "Орлова" },
  { id: 700_100_205, firstName: "Игорь", lastName: "Волков", username: "volk_igor" },
  { id: 700_100_206, firstName: "Никита", username: "nikita_2007" },
  { id: 700_100_207, firstName: "Ольга", lastName: "Лебедева", username: "olga_leb" },
  { id: 700_100_208, firstName: "Сергей", username: "serg_games" },
];

/** Products already on sale, with prices and stock, beside the one the test creates in the browser. */
async function seedShop(): Promise<void> {
  for (const b of BUYERS) await t.shop.users.touch(b);
  const catalogue: [string, string, Record<number, number>, [number, number][]][] = [
    [
      "Rust",
      "Приватный софт для Rust: ESP, радар, аимбот. Windows 10/11.",
      { 1: 249, 7: 990, 30: 2490 },
      [
        [1, 40],
        [7, 25],
        [30, 3],
      ],
    ],
    [
      "Escape",
      "Радар и ESP для Escape. Обновления бесплатно весь срок.",
      { 7: 1290, 30: 3490, 90: 7990 },
      [
        [7, 12],
        [30, 8],
        [90, 0],
      ],
    ],
  ];
  for (const [name, description, prices, stock] of catalogue) {
    const product = await t.shop.products.create({ name, description });
    for (const [days, rub] of Object.entries(prices)) await t.shop.products.setPrice(product.id, Number(days), rub);
    for (const [days, n] of stock) if (n > 0) await t.shop.keys.generate(product.id, days, n);
  }
  const ids = BUYERS.map((b) => b.id);
  const rustId = (await t.shop.products.byName("Rust"))!.id;
  const escapeId = (await t.shop.products.byName("Escape"))!.id;
  await t.shop.settings.update({ anypayMerchantId: "12345", anypaySecretKey: "test-secret" });
  // A month and a half of sales, oldest first, across the buyers and both products, plus a few orders in the other states.
  await t.sql`
    insert into orders (user_id, product_id, days, amount_rub, status, created_at, reserved_until, paid_at, delivered_at,
                        provider, paid_rub)
    select (${ids}::bigint[])[1 + g % ${ids.length}],
           case when g % 3 = 0 then ${escapeId}::bigint else ${rustId}::bigint end,
           case when g % 3 = 0 then 30 when g % 2 = 0 then 7 else 1 end,
           price,
           'delivered',
           now() - make_interval(days => (89 - g) / 2, hours => g % 7), now(),
           now() - make_interval(days => (89 - g) / 2, hours => g % 7), now() - make_interval(days => (89 - g) / 2),
           'anypay', price
    from generate_series(0, 89) g
    cross join lateral (select case when g % 3 = 0 then 3490 when g % 2 = 0 then 990 else 249 end as price) p`;
  await t.sql`
    insert into orders (user_id, product_id, days, amount_rub, status, created_at, reserved_until, paid_at, failure,
                        provider, paid_rub)
    values (${ids[1]!}, ${rustId}, 7, 990, 'pending', now() - interval '3 minutes', now() + interval '12 minutes', null, null,
            null, null),
           (${ids[2]!}, ${escapeId}, 30, 3490, 'expired', now() - interval '2 hours', now() - interval '100 minutes', null, null,
            null, null),
           (${ids[4]!}, ${escapeId}, 90, 7990, 'paid_no_stock', now() - interval '40 minutes', now() - interval '25 minutes',
            now() - interval '38 minutes', null, 'anypay', 7990)`;
  for (const b of BUYERS.slice(0, 5)) {
    await t.shop.users.logEvent(b.id, "start");
    await t.shop.keys.issue(rustId, 7, b.id);
  }
}

let t: TestShop;
let account: { login: string; password: string };
let browser: Browser;
let panelUrl: string;

beforeAll(async () => {
  t = await createTestShop();
  ({ panelUrl } = listen(t));
  account = await credentials(t);
  browser = await launchBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await t.app.stop(true);
  await t.close();
}, 20_000);

describe("the panel in a browser", () => {
  test("log in and walk every tab and page over realistic data: each readable at 1280 and 390 px, names as text", async () => {
    await seedShop();
    // A buyer whose Telegram first name is a script, with a key their loader activated and a long support note.
    await t.shop.users.touch({ id: BUYER_ID, firstName: XSS, username: "buyer" });
    const rust = (await t.shop.products.byName("Rust"))!;
    const sold = await t.shop.keys.issue(rust.id, 30, BUYER_ID, "поддержка: переустановил Windows, сбросили привязку");
    const auth = await fetch(`${panelUrl}api/Rust/auth`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: sold.key, uuid: "5f0c6b1e-7d2a-4c1b-9e8f-3a2b1c0d9e8f-DESKTOP-7Q2K9LM" }),
    });
    expect(auth.status).toBe(200);
    await t.shop.admins.add(BUYERS[0]!.id, "владелец");
    await t.shop.admins.add(700_999_999, "ещё не писал");

    const context = await browser.newContext({ viewport: DESKTOP, locale: "ru-RU" });
    const { page, alerts, errors } = await watchedPage(context);
    await page.goto(panelUrl);
    await shoot(page, "login");
    await page.fill("#f-login", account.login);
    await page.fill("#f-password", account.password);
    await page.click("#login-form button[type=submit]");
    await page.locator("main h1", { hasText: "Главная" }).waitFor();
    expect(new URL(page.url()).pathname).toBe("/Morpheus%20Private/");
    const cookie = (await context.cookies()).find((c) => c.name === "mph_session")!;
    expect(cookie.httpOnly).toBe(true);
    expect(cookie.sameSite).toBe("Strict");
    expect(cookie.path).toBe("/Morpheus%20Private");

    await see(page, "table.stock", "Escape");
    await see(page, "figcaption", /всего [1-9]/);
    await shoot(page, "dashboard");

    await openTab(page, "Основные настройки");
    await see(page, "#broadcast", "Получат 9 пользователей");
    await shoot(page, "settings");

    await openTab(page, "Администраторы");
    await see(page, "#admins table", "Алексей Смирнов (@alex_smirnov)");
    await see(page, "#admins table", "ещё не писал боту");
    await shoot(page, "admins");

    await openTab(page, "Пользователи");
    await see(page, "#users-list a", XSS);
    await see(page, "#users-list", "Кузнецова");
    await shoot(page, "users");
    await page.locator("#users-list a", { hasText: XSS }).click();
    await page.locator("main h1", { hasText: XSS }).waitFor();
    await see(page, "main", sold.key);
    await openTab(page, "Пользователи");
    await page.locator("#users-list a", { hasText: "Алексей" }).click();
    await page.locator("main h1", { hasText: "Алексей" }).waitFor();
    await see(page, "ol.log", "Получил ключ");
    await shoot(page, "user");

    await openTab(page, "Продукты");
    await see(page, "main table", "Escape");
    await shoot(page, "products");
    await page.locator("main table a", { hasText: "Rust" }).click();
    await page.locator("main h1", { hasText: "Rust" }).waitFor();
    await see(page, "#archive .badge", "в продаже");
    await shoot(page, "product");
    await page.locator("#keys .subtabs a", { hasText: /^Проданные/ }).click();
    await see(page, `#key-${sold.id} .hwid`, "DESKTOP-7Q2K9LM");
    await see(page, `#key-${sold.id}`, XSS);
    // The key and the HWID are not broken mid-token while the note has room to wrap.
    const lines = await page.locator(`#key-${sold.id} .key`).evaluate((el) => el.getClientRects().length);
    expect(lines).toBe(1);
    await shoot(page, "product-sold");

    await openTab(page, "Заказы");
    await see(page, "main", "Мария");
    await shoot(page, "orders");
    await page.locator("#orders-list tbody a[href*='/orders/']").first().click();
    await page.locator("main h1", { hasText: "Заказ #" }).waitFor();
    await shoot(page, "order");

    await page.locator("details.account summary").click();
    await page.locator("details.account a", { hasText: "Сменить пароль" }).click();
    await page.locator("main h1", { hasText: "Учётная запись" }).waitFor();
    await shoot(page, "password");

    // A POST without the CSRF token, with the session cookie, is refused.
    const forged = await page.request.post(`${panelUrl}settings/bot`, { form: { botEnabled: "on" }, maxRedirects: 0 });
    expect(forged.status()).toBe(403);
    expect((await t.shop.settings.load()).botEnabled).toBe(false);
    // Every page names its icon: the browser never asked the site root for /favicon.ico.
    expect(await page.locator("link[rel=icon]").count()).toBe(1);
    await context.close();
    expect(alerts).toEqual([]);
    expect(errors).toEqual([]);
  }, 120_000);

  test("a page behind the login sends a browser without a valid cookie to the login page", async () => {
    const { login, password } = account;
    const anonymous = await browser.newContext({ locale: "ru-RU" });
    const { page, alerts } = await watchedPage(anonymous);
    await page.goto(`${panelUrl}products`);
    await page.locator("h1", { hasText: "Вход в панель" }).waitFor();
    expect(page.url()).toContain("/Morpheus%20Private/?next=");
    // Logging in from there lands on the page that was asked for.
    await page.fill("#f-login", login);
    await page.fill("#f-password", password);
    await page.click("#login-form button[type=submit]");
    await page.locator("main h1", { hasText: "Продукты" }).waitFor();

    const good = (await anonymous.cookies()).find((c) => c.name === "mph_session")!;
    const tampered = await browser.newContext();
    const [head, body] = good.value.split(".");
    await tampered.addCookies([{ ...good, value: `${head}.${body}.forged-signature` }]);
    const { page: second } = await watchedPage(tampered);
    await second.goto(`${panelUrl}settings`);
    await second.locator("h1", { hasText: "Вход в панель" }).waitFor();
    await anonymous.close();
    await tampered.close();
    expect(alerts).toEqual([]);
  }, 30_000);

  test("a wrong password is refused and the sixth try is rate-limited", async () => {
    const { login, password } = account;
    // Its own client address (through the trusted local proxy), so the other tests' logins are not counted.
    const context = await browser.newContext({
      locale: "ru-RU",
      extraHTTPHeaders: { "x-forwarded-for": "203.0.113.77" },
    });
    const { page } = await watchedPage(context);
    await page.goto(panelUrl);
    for (let i = 1; i <= 5; i++) {
      await page.fill("#f-login", login);
      await page.fill("#f-password", `wrong-${i}`);
      await page.click("#login-form button[type=submit]");
      await see(page, "#login-form .notice-error", "Неверный логин или пароль.");
      await page.locator("#login-form button:not([disabled])").waitFor();
    }
    await page.fill("#f-login", login);
    await page.fill("#f-password", password);
    await page.click("#login-form button[type=submit]");
    await see(page, "#login-form .notice-error", "Слишком много неудачных попыток входа");
    await page.setViewportSize(PHONE);
    await page.screenshot({ path: join(ARTIFACTS, "login-rate-limited-390.png"), fullPage: true });
    expect((await context.cookies()).some((c) => c.name === "mph_session")).toBe(false);
    await context.close();
  }, 30_000);
});
