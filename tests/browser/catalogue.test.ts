import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { maskKey } from "../../src/lib/keys.ts";
import { createTestShop, type TestShop } from "../helpers/shop.ts";
import {
  ARTIFACTS,
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
  zipFile,
} from "./helpers.ts";

/**
 * Продукты, clicked as the owner clicks them in chromium: create a product, describe it, price it, generate and
 * import keys (with a bad line), upload its build, sell a key by hand, and everything done to a sold key — reset,
 * ban, unban, extend, note — and to an unsold one (delete).
 */

/**
 * A description that escapes nothing would run: it closes the <textarea> it is edited in, then tries a script and
 * an image whose onerror calls alert(). Any of them running shows up as a dialog.
 */
const DESCRIPTION_XSS = "</textarea><script>alert(1)</script><img src=x onerror=alert(2)>";

let t: TestShop;
let browser: Browser;
let origin: string;
let panelUrl: string;
let owner: Watched;
let productId: number;

beforeAll(async () => {
  t = await createTestShop();
  ({ origin, panelUrl } = listen(t));
  const account = await credentials(t);
  browser = await launchBrowser();
  owner = await watchedPage(await browser.newContext({ viewport: DESKTOP, locale: "ru-RU" }));
  await logIn(owner.page, panelUrl, account);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await t.app.stop(true);
  await t.close();
}, 20_000);

/** Opens a sold key's «Действия» menu in its row. */
async function actions(page: Page, keyId: number) {
  const row = page.locator(`#key-${keyId}`);
  if (!(await row.locator("details.menu[open]").count())) await row.locator("summary", { hasText: "Действия" }).click();
  return row;
}

describe("a product from nothing to sale", () => {
  test("create with the name checked while typing, then the description, shown as text", async () => {
    const { page } = owner;
    await openTab(page, "Продукты");
    await shoot(page, "flow-products-empty");
    await page.fill("#f-name", "Bad/Name");
    await see(page, "#name-check", "не может содержать «/»");
    await page.fill("#f-name", "Stalcraft");
    await page.locator("#name-check:empty").waitFor({ state: "attached" });
    await page.fill("#f-description", DESCRIPTION_XSS);
    await page.click("#product-create button[type=submit]");
    await page.locator("main h1", { hasText: "Stalcraft" }).waitFor();
    productId = (await t.shop.products.byName("Stalcraft"))!.id;
    expect(new URL(page.url()).pathname).toBe(`/Morpheus%20Private/products/${productId}`);
    expect(await page.locator("#description .bot-preview blockquote").textContent()).toBe(DESCRIPTION_XSS);
    expect(await page.inputValue("#description textarea")).toBe(DESCRIPTION_XSS);
    expect(await page.locator("img[src=x]").count()).toBe(0);
    await see(page, "#api-url", "/Morpheus%20Private/api/Stalcraft/auth");
    // Nothing priced, nothing in stock: the badge does not pretend.
    await see(page, "#archive .badge", "не продаётся: нет цен");

    await page.fill("#description textarea", "Приватный софт для Stalcraft: ESP, радар, подсветка лута.");
    await page.click("#description button[type=submit]");
    await see(page, "#description .notice-ok", "Описание сохранено.");
    await see(page, "#description .bot-preview", "подсветка лута");
    expect(owner.alerts).toEqual([]);
  }, 30_000);

  test("prices typed as people type them («1 490»), junk refused in Russian next to the field", async () => {
    const { page } = owner;
    await page.fill("#f-price_1", "299");
    await page.fill("#f-price_7", "1 490");
    await page.fill("#f-price_30", "три тысячи");
    await page.click("#prices button[type=submit]");
    await see(page, "#prices .field-error", "Целое число рублей до 10 000 000");
    expect(await t.shop.products.prices(productId)).toEqual({});
    await page.fill("#f-price_30", "");
    // A price in Telegram Stars beside the roubles, for one duration.
    await page.fill("#f-stars_7", "много");
    await page.click("#prices button[type=submit]");
    await see(page, "#prices .field-error", "Целое число звёзд до 100 000");
    await page.fill("#f-stars_7", "90");
    await page.click("#prices button[type=submit]");
    await see(page, "#prices .notice-ok", "Цены сохранены.");
    expect(await t.shop.products.prices(productId)).toEqual({ 1: 299, 7: 1490 });
    expect(await t.shop.products.starsPrices(productId)).toEqual({ 7: 90 });
    await shoot(page, "flow-prices-stars");
    // Priced but no keys yet: still not on sale, and the badge followed without a reload.
    await see(page, "#archive .badge", "не продаётся: нет ключей по ценам");
  }, 30_000);

  test("generate keys, then import with a duplicate and a bad line, reported in Russian", async () => {
    const { page } = owner;
    await page.selectOption("#f-gen-days", "7");
    await page.fill("#f-gen-count", "25");
    await page.click("#generate button[type=submit]");
    await see(page, "#generate .notice-ok", "Создано 25 ключей на 7 дней.");
    await see(page, "#keys .subtabs a.active", /Непроданные\s+25/);
    await see(page, "#archive .badge", "в продаже");

    await page.selectOption("#f-imp-days", "1");
    await page.fill("#f-keys", "IMPORTED-KEY-1\nIMPORTED-KEY-2\nIMPORTED-KEY-1\nbad key with spaces\n");
    await page.click("#import button[type=submit]");
    await see(page, "#import .notice", "Импортировано: 2, дубликатов: 1, с ошибкой: 1");
    await see(page, "#import .problems", "строка 4: в ключе пробел или непечатаемый символ");
    await see(page, "#keys .subtabs a.active", /Непроданные\s+27/);
    await see(page, "#key-list", "IMPORTED-KEY-2");

    // Search the unsold list by the beginning of a key: the CSV export follows the search.
    await page.fill("#keys input[name=q]", "imported-key-2");
    await page.waitForFunction(() => document.querySelectorAll("#key-list tbody tr").length === 1);
    const csv = await page.locator("#keys-csv").getAttribute("href");
    expect(new URL(csv!, origin).searchParams.get("q")).toBe("imported-key-2");
    await page.fill("#keys input[name=q]", "");
    await page.waitForFunction(() => document.querySelectorAll("#key-list tbody tr").length > 1);
  }, 30_000);

  test("upload the build: a file that is not a zip is refused, a real zip is stored with its sha256", async () => {
    const { page } = owner;
    const notZip = join(ARTIFACTS, "not-a-zip.zip");
    await Bun.write(notZip, "MZ this is an exe renamed to .zip");
    await page.setInputFiles("#f-build", notZip);
    await page.click("#build button[type=submit]");
    await see(page, "#build .field-error", "Это не zip-архив");

    const zipPath = join(ARTIFACTS, "loader.zip");
    await Bun.write(zipPath, zipFile());
    await page.setInputFiles("#f-build", zipPath);
    await page.click("#build button[type=submit]");
    await see(page, "#build .notice-ok", "Билд загружен.");
    const sha = new Bun.CryptoHasher("sha256").update(await Bun.file(zipPath).arrayBuffer()).digest("hex");
    await see(page, "#build .hash", sha);
    expect((await t.shop.products.byId(productId))!.build!.sha256).toBe(sha);
  }, 30_000);

  test("«Выдать ключ» sells one key by hand to a Telegram id with a note, and the loader can use it", async () => {
    const { page } = owner;
    await t.shop.users.touch({ id: 700_100_300, firstName: "Анна", username: "anna" });
    await page.selectOption("#f-issue-days", "7");
    await page.fill("#f-issue-to", "700100300");
    await page.fill("#f-issue-note", "замена по тикету 42");
    await page.click("#issue button[type=submit]");
    await see(page, "#issue .notice-ok", "Ключ выдан на 7 дней покупателю 700100300");
    const key = (await page.locator("#issued-key").textContent())!;
    expect(await t.shop.keys.find(key)).toMatchObject({
      state: "sold",
      buyerId: 700_100_300,
      note: "замена по тикету 42",
    });
    await see(page, "#keys .subtabs a", /Проданные\s+1/);
    await see(page, "#archive .badge", "в продаже");
    await shoot(page, "flow-product");

    // The loader activates it.
    const auth = await fetch(`${origin}/Morpheus%20Private/api/Stalcraft/auth`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key, uuid: "PC-HWID-42" }),
    });
    expect(auth.status).toBe(200);
  }, 30_000);

  test("a sold key: reset the HWID, ban, unban, extend, note — each answered in its row", async () => {
    const { page } = owner;
    const [sold] = await t.sql<{ id: string; key: string }[]>`
      select id, key from keys where product_id = ${productId} and state = 'sold'`;
    const keyId = Number(sold!.id);
    await page.locator("#keys .subtabs a", { hasText: /^Проданные/ }).click();
    await page.locator(`#key-${keyId}`).waitFor();
    await see(page, `#key-${keyId} .hwid`, "PC-HWID-42");
    await see(page, `#key-${keyId}`, "Анна");

    let row = await actions(page, keyId);
    await row.locator("button", { hasText: "Сбросить HWID" }).click();
    await see(page, `#key-${keyId} .ok-text`, "HWID сброшен");
    await see(page, `#key-${keyId} .hwid`, "—");
    expect((await t.shop.keys.byId(keyId))!.hwid).toBeNull();

    row = await actions(page, keyId);
    await row.locator("button", { hasText: "Забанить" }).click();
    await see(page, `#key-${keyId} .ok-text`, "Ключ забанен.");
    await see(page, `#key-${keyId} .badge`, "забанен");
    const banned = await fetch(`${origin}/Morpheus%20Private/api/Stalcraft/auth?key=${sold!.key}&uuid=PC-HWID-42`);
    expect(await banned.json()).toEqual({ success: false, message: "Key banned" });

    row = await actions(page, keyId);
    await row.locator("button", { hasText: "Разбанить" }).click();
    await see(page, `#key-${keyId} .ok-text`, "Ключ разбанен.");
    expect((await t.shop.keys.byId(keyId))!.bannedAt).toBeNull();

    const before = (await t.shop.keys.byId(keyId))!.expiresAt!;
    row = await actions(page, keyId);
    await row.locator("input[name=days]").fill("3");
    await row.locator("button", { hasText: "Продлить на N дней" }).click();
    await see(page, `#key-${keyId} .ok-text`, "Продлён на 3 дн.");
    const after = (await t.shop.keys.byId(keyId))!.expiresAt!;
    expect(Math.round((after.getTime() - before.getTime()) / 86_400_000)).toBe(3);

    row = await actions(page, keyId);
    await row.locator("input[name=note]").fill("вернул деньги за 3 дня простоя");
    await row.locator("button", { hasText: "Сохранить" }).click();
    await see(page, `#key-${keyId} .ok-text`, "Заметка сохранена.");
    await see(page, `#key-${keyId} .note`, "вернул деньги за 3 дня простоя");
    expect(owner.confirms).toEqual(
      expect.arrayContaining([
        "Сбросить HWID? Ключ привяжется к следующему ПК, срок не изменится.",
        "Забанить ключ? Лоадер получит «Key banned».",
      ]),
    );
    await shoot(page, "flow-product-sold");
  }, 30_000);

  test("an unsold key is deleted from its row; the counts follow", async () => {
    const { page } = owner;
    await page.locator("#keys .subtabs a", { hasText: /^Непроданные/ }).click();
    await see(page, "#keys .subtabs a.active", /Непроданные\s+26/);
    const first = page.locator("#key-list tbody tr").first();
    const id = Number((await first.getAttribute("id"))!.replace("key-", ""));
    await first.locator("button", { hasText: "Удалить" }).click();
    await page.locator(`#key-${id}`).waitFor({ state: "detached" });
    await see(page, "#keys .subtabs a.active", /Непроданные\s+25/);
    expect(await t.shop.keys.byId(id)).toBeNull();
    expect(owner.confirms).toContain("Удалить ключ?");
  }, 30_000);

  test("the buyer's page tells what happened in words", async () => {
    const { page } = owner;
    await openTab(page, "Пользователи");
    await page.locator("#users-list a", { hasText: "Анна" }).click();
    await page.locator("main h1", { hasText: "Анна" }).waitFor();
    const [sold] = await t.sql<
      { key: string }[]
    >`select key from keys where product_id = ${productId} and state = 'sold'`;
    await see(page, "ol.log", `Получил ключ ${maskKey(sold!.key)} без оплаты: «Stalcraft» на 7 дней`);
    await shoot(page, "flow-user-gift");
    expect(owner.errors).toEqual([]);
    expect(owner.alerts).toEqual([]);
  }, 30_000);
});
