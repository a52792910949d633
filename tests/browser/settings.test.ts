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
  PHONE,
  see,
  shoot,
  sidewaysOverflow,
  type Watched,
  watchedPage,
} from "./helpers.ts";

/**
 * Основные настройки and Администраторы, clicked as the owner clicks them in chromium: the bot and maintenance
 * switches, the token, AnyPay, a broadcast from preview to send to stop, the admin list, and logging out.
 */

let t: TestShop;
let browser: Browser;
let panelUrl: string;
let account: { login: string; password: string };
let owner: Watched;

beforeAll(async () => {
  t = await createTestShop();
  ({ panelUrl } = listen(t));
  account = await credentials(t);
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

describe("Основные настройки in a browser", () => {
  test("the bot and maintenance switches, the token and AnyPay", async () => {
    const { page } = owner;
    await openTab(page, "Основные настройки");
    await page.locator("#bot-switches button", { hasText: "Включить бота" }).click();
    await see(page, "#bot-switches .notice-ok", "Бот включён.");
    await see(page, "#bot-switches .switch-state", "Включён");
    expect((await t.shop.settings.load()).botEnabled).toBe(true);

    await page.locator("#bot-switches button", { hasText: "Начать работы" }).click();
    await see(page, "#bot-switches .notice-ok", "Технические работы начаты.");
    expect((await t.shop.settings.load()).maintenance).toBe(true);
    await page.locator("#bot-switches button", { hasText: "Закончить работы" }).click();
    await see(page, "#bot-switches .notice-ok", "Технические работы закончены.");
    expect((await t.shop.settings.load()).maintenance).toBe(false);

    // Switching the bot off asks first.
    await page.locator("#bot-switches button", { hasText: "Выключить бота" }).click();
    await see(page, "#bot-switches .notice-ok", "Бот выключен.");
    expect(owner.confirms).toContain("Выключить бота для покупателей?");
    expect((await t.shop.settings.load()).botEnabled).toBe(false);

    await page.fill("#f-botToken", "not a token");
    await page.click("#bot-token form button[type=submit]");
    await see(page, "#e-botToken", "Токен бота выглядит как 123456789:AA…");
    await page.fill("#f-botToken", "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw");
    await page.click("#bot-token form button[type=submit]");
    await see(page, "#bot-token .notice-ok", "Токен сохранён");
    expect(await page.content()).not.toContain("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw");

    await page.fill("#f-anypayMerchantId", "12345");
    await page.fill("#f-anypaySecretKey", "anypay-secret");
    await page.click("#anypay form.stack button[type=submit]");
    await see(page, "#anypay .notice-ok", "Настройки AnyPay сохранены.");
    expect(await t.shop.settings.load()).toMatchObject({ anypayMerchantId: "12345", anypaySecretKey: "anypay-secret" });
    expect(await page.content()).not.toContain("anypay-secret");
    await shoot(page, "flow-settings");
    expect(owner.errors).toEqual([]);
  }, 60_000);

  test("a broadcast to nobody is refused in the card, not inside a button", async () => {
    const { page } = owner;
    await openTab(page, "Основные настройки");
    await see(page, "#broadcast", "Получат 0 пользователей");
    await page.fill("#f-broadcast-text", "Никому");
    await page.locator("#broadcast button", { hasText: "Предпросмотр" }).click();
    await see(page, "#broadcast", "Так сообщение увидят 0 пользователей:");
    await page.locator("#broadcast button", { hasText: "Отправить" }).click();
    await see(page, "#broadcast .field-error", "Некому отправлять");
    // The refused form is the card again, with the text kept; nothing landed in a button.
    expect(await page.inputValue("#f-broadcast-text")).toBe("Никому");
    expect(await page.locator("button form, button section, button textarea").count()).toBe(0);
    expect(await page.locator("section#broadcast").count()).toBe(1);
    expect(await t.shop.broadcasts.recent()).toEqual([]);
  }, 30_000);

  test("preview → edit → preview → send → stop: exactly one broadcast, and it is stopped", async () => {
    const { page } = owner;
    await t.sql`insert into bot_users (telegram_id, first_name) select g, 'Покупатель' from generate_series(1, 3) g`;
    await openTab(page, "Основные настройки");
    await see(page, "#broadcast", "Получат 3 пользователя");
    const text = "Скидка 20% на Rust до воскресенья! <b>не жирный</b>";
    await page.fill("#f-broadcast-text", text);
    await page.locator("#broadcast button", { hasText: "Предпросмотр" }).click();
    await see(page, "#broadcast", "Так сообщение увидят 3 пользователя:");
    expect(await page.locator("#broadcast blockquote.preview").textContent()).toBe(text);
    await page.locator("#broadcast button", { hasText: "Изменить" }).click();
    await page.locator("#f-broadcast-text").waitFor();
    expect(await page.inputValue("#f-broadcast-text")).toBe(text);
    await page.locator("#broadcast button", { hasText: "Предпросмотр" }).click();
    await page.locator("#broadcast button", { hasText: "Отправить" }).click();

    await page.locator("#broadcast article.broadcast").waitFor();
    const [broadcast] = await t.shop.broadcasts.recent();
    await page.locator(`#broadcast #broadcast-${broadcast!.id}`).waitFor();
    expect(await page.locator("button article, button section, button form").count()).toBe(0);
    await see(page, `#broadcast-${broadcast!.id}`, "Отправлено 0 из 3");
    await shoot(page, "flow-settings-broadcast");
    await page.locator(`#broadcast-${broadcast!.id} button`, { hasText: "Остановить" }).click();
    await see(page, `#broadcast-${broadcast!.id}`, "остановлена");
    expect(owner.confirms).toContain("Остановить рассылку? Кто ещё не получил сообщение, не получит его.");

    const all = await t.shop.broadcasts.recent();
    expect(all.map((b) => ({ id: b.id, status: b.status, text: b.text }))).toEqual([
      { id: broadcast!.id, status: "cancelled", text },
    ]);
    expect(all[0]!.progress).toMatchObject({ total: 3, cancelled: 3, sent: 0 });
    // Finished: the block no longer polls, and no second broadcast appears later.
    await page.waitForTimeout(1500);
    expect((await t.shop.broadcasts.recent()).length).toBe(1);
    expect(await page.locator(`#broadcast-${broadcast!.id}[hx-trigger]`).count()).toBe(0);
    expect(owner.errors).toEqual([]);
  }, 30_000);
});

describe("Администраторы in a browser", () => {
  test("add with a note (a bad id is refused next to the field), adding again changes nothing, remove", async () => {
    const { page } = owner;
    await openTab(page, "Администраторы");
    await page.fill("#f-telegramId", "not a number");
    await page.click("#admins form.inline-form button[type=submit]");
    await see(page, "#e-telegramId", "Telegram ID — положительное число");
    await page.fill("#f-telegramId", "700100201");
    await page.fill("#f-note", "владелец");
    await page.click("#admins form.inline-form button[type=submit]");
    await see(page, "#admins .notice-ok", "700100201 теперь администратор бота.");
    await see(page, "#admins table", "владелец");
    await see(page, "#admins table", "ещё не писал боту");
    expect(await t.shop.admins.isAdmin(700100201)).toBe(true);

    await page.fill("#f-telegramId", "700100201");
    await page.fill("#f-note", "");
    await page.click("#admins form.inline-form button[type=submit]");
    await see(page, "#e-telegramId", "уже администратор — ничего не изменено");
    await see(page, "#admins table", "владелец");
    await shoot(page, "flow-admins");

    await page.locator("#admins table button", { hasText: "Убрать" }).click();
    await see(page, "#admins .notice-ok", "700100201 больше не администратор.");
    expect(owner.confirms).toContain("Убрать 700100201 из администраторов?");
    expect(await t.shop.admins.isAdmin(700100201)).toBe(false);
    expect(owner.errors).toEqual([]);
  }, 30_000);
});

describe("the account menu", () => {
  test("the change-password page at 390 px, then logging out ends the session", async () => {
    const { page } = owner;
    await page.locator("details.account summary").click();
    await page.locator("details.account a", { hasText: "Сменить пароль" }).click();
    await page.locator("main h1", { hasText: "Учётная запись" }).waitFor();
    await shoot(page, "flow-account");
    const cookie = (await page.context().cookies()).find((c) => c.name === "mph_session")!;

    await page.setViewportSize(PHONE);
    await page.locator("details.account summary").click();
    await page.locator("details.account button", { hasText: "Выйти" }).click();
    await page.locator("h1", { hasText: "Вход в панель" }).waitFor();
    expect((await sidewaysOverflow(page)).scrollWidth).toBeLessThanOrEqual(PHONE.width);
    expect((await page.context().cookies()).some((c) => c.name === "mph_session")).toBe(false);
    // The old cookie, replayed, is the login page.
    const replay = await browser.newContext();
    await replay.addCookies([cookie]);
    const thief = await replay.newPage();
    await thief.goto(`${panelUrl}settings`);
    await thief.locator("h1", { hasText: "Вход в панель" }).waitFor();
    await replay.close();
    expect(owner.errors).toEqual([]);
    expect(owner.alerts).toEqual([]);
  }, 30_000);
});
