import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { createTestShop, type TestShop } from "../helpers/shop.ts";

/**
 * The panel in a real browser (Debian's headless chromium): log in with the credentials the CLI prints, walk every
 * tab, run the owner's main chores, and prove the security properties from the outside. Screenshots of every tab
 * (login, Главная, Основные настройки, Администраторы, Пользователи and a user's page, Продукты and a product's
 * page, Заказы, change password), desktop and 390 px wide, go to tests/artifacts/ (ignored by git), over a shop with
 * realistic data: docs/panel.png is one of them.
 */

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(import.meta.dir, "..", "artifacts");
/** A Telegram first name: the issue's own probe, which must show as text. */
const XSS = "<script>alert(1)</script>";
/**
 * A description that escapes nothing would run: it closes the <textarea> it is edited in, then tries a script and
 * an image whose onerror calls alert(). Any of them running shows up as a dialog.
 */
const DESCRIPTION_XSS = "</textarea><script>alert(1)</script><img src=x onerror=alert(2)>";
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
    insert into orders (user_id, product_id, days, amount_rub, status, created_at, reserved_until, paid_at, delivered_at)
    select (${ids}::bigint[])[1 + g % ${ids.length}],
           case when g % 3 = 0 then ${escapeId}::bigint else ${rustId}::bigint end,
           case when g % 3 = 0 then 30 when g % 2 = 0 then 7 else 1 end,
           case when g % 3 = 0 then 3490 when g % 2 = 0 then 990 else 249 end,
           'delivered',
           now() - make_interval(days => (89 - g) / 2, hours => g % 7), now(),
           now() - make_interval(days => (89 - g) / 2, hours => g % 7), now() - make_interval(days => (89 - g) / 2)
    from generate_series(0, 89) g`;
  await t.sql`
    insert into orders (user_id, product_id, days, amount_rub, status, created_at, reserved_until, paid_at, failure)
    values (${ids[1]!}, ${rustId}, 7, 990, 'pending', now() - interval '3 minutes', now() + interval '12 minutes', null, null),
           (${ids[2]!}, ${escapeId}, 30, 3490, 'expired', now() - interval '2 hours', now() - interval '100 minutes', null, null),
           (${ids[4]!}, ${escapeId}, 90, 7990, 'paid_no_stock', now() - interval '40 minutes', now() - interval '25 minutes',
            now() - interval '38 minutes', null)`;
  for (const b of BUYERS.slice(0, 5)) {
    await t.shop.users.logEvent(b.id, "start");
    await t.shop.keys.issue(rustId, 7, b.id);
  }
}

let t: TestShop;
let account: { login: string; password: string };
let browser: Browser;
let origin: string;
let panelUrl: string;
const alerts: string[] = [];

/** The panel login as the operator gets it: printed by `bun run cli admin:reset`, run as a real process. */
async function credentials(): Promise<{ login: string; password: string }> {
  const cli = join(import.meta.dir, "..", "..", "src", "cli.ts");
  const proc = Bun.spawn(["bun", cli, "admin:reset", "admin"], {
    env: {
      ...process.env,
      DATABASE_URL: t.databaseUrl,
      REDIS_URL: t.redisUrl,
      REDIS_PREFIX: t.redisPrefix,
      LOG_LEVEL: "error",
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  const login = /^login: (\S+)$/m.exec(out)?.[1];
  const password = /^password: (\S+)$/m.exec(out)?.[1];
  if (code !== 0 || !login || !password) throw new Error(`admin:reset failed (${code}): ${out}\n${err}`);
  return { login, password };
}

async function newPage(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  page.on("dialog", async (dialog) => {
    // hx-confirm asks with confirm(); an alert() can only come from injected script.
    if (dialog.type() === "alert") alerts.push(dialog.message());
    await dialog.accept();
  });
  page.on("pageerror", (error) => alerts.push(`page error: ${error.message}`));
  return page;
}

async function shoot(page: Page, name: string): Promise<void> {
  // From the top: a full-page shot of a scrolled page would draw the sticky tab bar mid-page.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: join(ARTIFACTS, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(ARTIFACTS, `${name}-390.png`), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });
}

/** Clicks a tab in the top navigation (a boosted link: htmx swaps the body) and waits for its heading. */
async function openTab(page: Page, label: string, heading = label): Promise<void> {
  await page.locator("nav.tabs a", { hasText: label }).click();
  await page.locator("main h1", { hasText: heading }).waitFor();
}

const text = (page: Page, selector: string, hasText: string | RegExp) =>
  page.locator(selector, { hasText }).first().waitFor({ timeout: 10_000 });

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  await mkdir(ARTIFACTS, { recursive: true });
  t = await createTestShop();
  t.app.listen({ hostname: "127.0.0.1", port: 0 });
  origin = `http://127.0.0.1:${t.app.server!.port}`;
  panelUrl = `${origin}/Morpheus%20Private/`;
  account = await credentials();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await t.app.stop(true);
  await t.close();
}, 20_000);

describe("the panel in a browser", () => {
  test("log in, walk every tab, create a product, upload a zip, set prices, generate and import keys, reset a HWID", async () => {
    const { login, password } = account;
    await seedShop();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "ru-RU" });
    const page = await newPage(context);

    await page.goto(panelUrl);
    await shoot(page, "login");
    await page.fill("#f-login", login);
    await page.fill("#f-password", password);
    await page.click("#login-form button[type=submit]");
    await page.locator("main h1", { hasText: "Главная" }).waitFor();
    expect(new URL(page.url()).pathname).toBe("/Morpheus%20Private/");
    const cookie = (await context.cookies()).find((c) => c.name === "mph_session")!;
    expect(cookie.httpOnly).toBe(true);
    expect(cookie.sameSite).toBe("Strict");
    expect(cookie.path).toBe("/Morpheus%20Private");

    // A buyer whose Telegram first name is a script, with a key they will activate.
    await t.shop.users.touch({ id: BUYER_ID, firstName: XSS, username: "buyer" });

    // Продукты: create with the inline name check, then the product page.
    await openTab(page, "Продукты");
    await text(page, "main table", "Escape");
    await shoot(page, "products");
    await page.fill("#f-name", "Bad/Name");
    await text(page, "#name-check", "не может содержать «/»");
    await page.fill("#f-name", "Stalcraft");
    await page.locator("#name-check:empty").waitFor({ state: "attached" });
    await page.fill("#f-description", DESCRIPTION_XSS);
    await page.click("#product-create button[type=submit]");
    await page.locator("main h1", { hasText: "Stalcraft" }).waitFor();
    const product = (await t.shop.products.byName("Stalcraft"))!;
    expect(new URL(page.url()).pathname).toBe(`/Morpheus%20Private/products/${product.id}`);
    // The description is text both where it is shown and where it is edited; nothing in it ran.
    expect(await page.locator("#description .bot-preview blockquote").textContent()).toBe(DESCRIPTION_XSS);
    expect(await page.inputValue("#description textarea")).toBe(DESCRIPTION_XSS);
    expect(await page.locator("img[src=x]").count()).toBe(0);
    expect(alerts).toEqual([]);
    await text(page, "#api-url", `/Morpheus%20Private/api/Stalcraft/auth`);
    // Then an ordinary description, as the owner would write it.
    await page.fill("#description textarea", "Приватный софт для Stalcraft: ESP, радар, подсветка лута.");
    await page.click("#description button[type=submit]");
    await text(page, "#description .notice-ok", "Описание сохранено.");
    await text(page, "#description .bot-preview", "подсветка лута");

    // Build: a real zip from disk.
    const zipPath = join(ARTIFACTS, "loader.zip");
    await Bun.write(zipPath, zipFile());
    await page.setInputFiles("#f-build", zipPath);
    await page.click("#build button[type=submit]");
    await text(page, "#build .notice-ok", "Билд загружен.");
    const sha = new Bun.CryptoHasher("sha256").update(await Bun.file(zipPath).arrayBuffer()).digest("hex");
    await text(page, "#build .hash", sha);

    // Prices.
    await page.fill("#f-price_1", "299");
    await page.fill("#f-price_7", "899");
    await page.click("#prices button[type=submit]");
    await text(page, "#prices .notice-ok", "Цены сохранены.");
    expect(await t.shop.products.prices(product.id)).toEqual({ 1: 299, 7: 899 });

    // Generate 25 seven-day keys: the key lists refresh themselves.
    await page.selectOption("#f-gen-days", "7");
    await page.fill("#f-gen-count", "25");
    await page.click("#generate button[type=submit]");
    await text(page, "#generate .notice-ok", "Создано 25 ключей на 7 дней.");
    await text(page, "#keys .subtabs a.active", /Непроданные\s+25/);

    // Import: one duplicate in the text.
    await page.selectOption("#f-imp-days", "1");
    await page.fill("#f-keys", "IMPORTED-KEY-1\nIMPORTED-KEY-2\nIMPORTED-KEY-1\n");
    await page.click("#import button[type=submit]");
    await text(page, "#import .notice", "Импортировано: 2, дубликатов: 1");
    await text(page, "#keys .subtabs a.active", /Непроданные\s+27/);
    await text(page, "#key-list", "IMPORTED-KEY-2");

    // Search the unsold list by the beginning of a key: the CSV export follows the search.
    await page.fill("#keys input[name=q]", "imported-key-2");
    await page.waitForFunction(() => document.querySelectorAll("#key-list tbody tr").length === 1);
    const csv = await page.locator("#keys-csv").getAttribute("href");
    expect(new URL(csv!, origin).searchParams.get("q")).toBe("imported-key-2");
    // New keys refresh the section with the search still in place.
    await page.fill("#f-gen-count", "5");
    await page.click("#generate button[type=submit]");
    await text(page, "#generate .notice-ok", "Создано 5 ключей на 7 дней.");
    await text(page, "#keys .subtabs a.active", /Непроданные\s+32/);
    expect(await page.inputValue("#keys input[name=q]")).toBe("imported-key-2");
    expect(await page.locator("#key-list tbody tr").count()).toBe(1);
    expect(new URL((await page.locator("#keys-csv").getAttribute("href"))!, origin).searchParams.get("q")).toBe(
      "imported-key-2",
    );
    await page.fill("#keys input[name=q]", "");
    await page.waitForFunction(() => document.querySelectorAll("#key-list tbody tr").length > 1);
    await shoot(page, "product");

    // A sale and an activation from the loader, then the HWID reset from the sold list.
    const sold = await t.shop.keys.issue(product.id, 7, BUYER_ID);
    const auth = await fetch(`${origin}/Morpheus%20Private/api/Stalcraft/auth`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: sold.key, uuid: "PC-HWID-42" }),
    });
    expect(auth.status).toBe(200);
    await page.locator("#keys .subtabs a", { hasText: /^Проданные/ }).click();
    const row = page.locator(`#key-${sold.id}`);
    await row.waitFor();
    await text(page, `#key-${sold.id} .hwid`, "PC-HWID-42");
    await text(page, `#key-${sold.id}`, XSS);
    await row.locator("summary", { hasText: "Действия" }).click();
    await row.locator("button", { hasText: "Сбросить HWID" }).click();
    await text(page, `#key-${sold.id} .ok-text`, "HWID сброшен");
    await text(page, `#key-${sold.id} .hwid`, "—");
    expect((await t.shop.keys.byId(sold.id))!.hwid).toBeNull();
    await shoot(page, "product-sold");

    // A big .txt: the form shows the import's progress, then its result, and the lists refresh.
    const bigPath = join(ARTIFACTS, "keys-30000.txt");
    await Bun.write(bigPath, Array.from({ length: 30_000 }, (_, i) => `BULK-${i}`).join("\n"));
    await page.selectOption("#f-imp-days", "1");
    await page.setInputFiles("#f-file", bigPath);
    await page.click("#import button[type=submit]");
    await text(page, "#import .notice", /Импортировано: 30\s000, дубликатов: 0/);
    await page.locator("#keys .subtabs a", { hasText: /^Непроданные/ }).click();
    await text(page, "#keys .subtabs a.active", /Непроданные\s+30\s031/);

    // Пользователи: the script in the first name is text; a buyer's page has their orders and keys.
    await openTab(page, "Пользователи");
    await text(page, "#users-list a", XSS);
    await text(page, "#users-list", "Кузнецова");
    await shoot(page, "users");
    await page.locator("#users-list a", { hasText: XSS }).click();
    await page.locator("main h1", { hasText: XSS }).waitFor();
    await text(page, "main", sold.key);
    await openTab(page, "Пользователи");
    await page.locator("#users-list a", { hasText: "Алексей" }).click();
    await page.locator("main h1", { hasText: "Алексей" }).waitFor();
    await shoot(page, "user");

    // Основные настройки: switch the bot on; the broadcast container is in place for the bot's form.
    await openTab(page, "Основные настройки");
    expect(await page.locator("section#broadcast.card").count()).toBe(1);
    await page.locator("#bot-switches button", { hasText: "Включить бота" }).click();
    await text(page, "#bot-switches .switch-state", "Включён");
    expect((await t.shop.settings.load()).botEnabled).toBe(true);
    await page.fill("#f-botToken", "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw");
    await page.click("#bot-token form button[type=submit]");
    await text(page, "#bot-token .notice-ok", "Токен сохранён");
    expect(await page.content()).not.toContain("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw");
    await shoot(page, "settings");

    // Администраторы.
    await openTab(page, "Администраторы");
    await page.fill("#f-telegramId", "not a number");
    await page.click("#admins form.inline-form button[type=submit]");
    await text(page, "#e-telegramId", "Telegram ID — положительное число");
    await page.fill("#f-telegramId", String(BUYERS[0]!.id));
    await page.fill("#f-note", "владелец");
    await page.click("#admins form.inline-form button[type=submit]");
    await text(page, "#admins table", "владелец");
    expect(await t.shop.admins.isAdmin(BUYERS[0]!.id)).toBe(true);
    await shoot(page, "admins");

    // Заказы and Главная, over the seeded months of sales.
    await openTab(page, "Заказы");
    await text(page, "main", "Мария");
    await shoot(page, "orders");
    await openTab(page, "Главная");
    await text(page, "table.stock", "Stalcraft");
    await text(page, "figcaption", /всего [1-9]/);
    await shoot(page, "dashboard");

    // Сменить пароль, from the account menu.
    await page.locator("details.account summary").click();
    await page.locator("details.account a", { hasText: "Сменить пароль" }).click();
    await page.locator("main h1", { hasText: "Учётная запись" }).waitFor();
    await shoot(page, "password");

    // A POST without the CSRF token, with the session cookie, is refused.
    const forged = await page.request.post(`${panelUrl}settings/bot`, {
      form: { botEnabled: "off" },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);
    expect((await t.shop.settings.load()).botEnabled).toBe(true);

    // Logout from the account menu.
    await page.locator("details.account summary").click();
    await page.locator("details.account button", { hasText: "Выйти" }).click();
    await page.locator("h1", { hasText: "Вход в панель" }).waitFor();
    expect((await context.cookies()).some((c) => c.name === "mph_session")).toBe(false);
    await context.close();

    expect(alerts).toEqual([]);
  }, 120_000);

  test("a page behind the login sends a browser without a valid cookie to the login page", async () => {
    const { login, password } = account;
    const anonymous = await browser.newContext({ locale: "ru-RU" });
    const page = await newPage(anonymous);
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
    const second = await newPage(tampered);
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
    const page = await newPage(context);
    await page.goto(panelUrl);
    for (let i = 1; i <= 5; i++) {
      await page.fill("#f-login", login);
      await page.fill("#f-password", `wrong-${i}`);
      await page.click("#login-form button[type=submit]");
      await text(page, "#login-form .notice-error", "Неверный логин или пароль.");
      await page.locator("#login-form button:not([disabled])").waitFor();
    }
    await page.fill("#f-login", login);
    await page.fill("#f-password", password);
    await page.click("#login-form button[type=submit]");
    await text(page, "#login-form .notice-error", "Слишком много неудачных попыток входа");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(ARTIFACTS, "login-rate-limited-390.png"), fullPage: true });
    expect((await context.cookies()).some((c) => c.name === "mph_session")).toBe(false);
    await context.close();
  }, 30_000);
});

/** A small valid zip archive (one stored file), as a loader build would be. */
function zipFile(): Uint8Array<ArrayBuffer> {
  const name = new TextEncoder().encode("Loader.exe");
  const content = new TextEncoder().encode("MZ fake loader");
  const crc = Bun.hash.crc32(content);
  const local = new Uint8Array(30 + name.length + content.length);
  const lv = new DataView(local.buffer);
  lv.setUint32(0, 0x04034b50, true);
  lv.setUint16(4, 20, true);
  lv.setUint32(14, crc, true);
  lv.setUint32(18, content.length, true);
  lv.setUint32(22, content.length, true);
  lv.setUint16(26, name.length, true);
  local.set(name, 30);
  local.set(content, 30 + name.length);
  const central = new Uint8Array(46 + name.length);
  const cv = new DataView(central.buffer);
  cv.setUint32(0, 0x02014b50, true);
  cv.setUint16(4, 20, true);
  cv.setUint16(6, 20, true);
  cv.setUint32(16, crc, true);
  cv.setUint32(20, content.length, true);
  cv.setUint32(24, content.length, true);
  cv.setUint16(28, name.length, true);
  central.set(name, 46);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, 1, true);
  ev.setUint16(10, 1, true);
  ev.setUint32(12, central.length, true);
  ev.setUint32(16, local.length, true);
  const out = new Uint8Array(local.length + central.length + end.length);
  out.set(local, 0);
  out.set(central, local.length);
  out.set(end, local.length + central.length);
  return out;
}
