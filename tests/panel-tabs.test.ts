import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { RevenueChart } from "../templates/dashboard.tsx";
import { PanelClient } from "./helpers/panel-client.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

let t: TestShop;
let c: PanelClient;
const XSS = "<script>alert(1)</script>";
/** Product names cannot contain "/", so they are tested with a tag that needs none. */
const IMG_XSS = "<img src=x onerror=alert(1)>";
const TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

beforeAll(async () => {
  t = await createTestShop();
  const { password } = await t.shop.accounts.reset("admin");
  c = new PanelClient(t);
  await c.login("admin", password);
  await c.page("/");
});
afterAll(async () => {
  await t.close();
});

/** A paid order of `rub` for a new sold key, `daysAgo` days back. */
async function paidOrder(productId: number, userId: number, rub: number, daysAgo: number, status = "delivered") {
  await t.sql`insert into bot_users (telegram_id, first_name) values (${userId}, 'Buyer') on conflict do nothing`;
  const [o] = await t.sql<{ id: string }[]>`
    insert into orders (user_id, product_id, days, amount_rub, status, created_at, reserved_until, paid_at, provider,
                        paid_rub)
    values (${userId}, ${productId}, 7, ${rub}, ${status}::order_status, now() - make_interval(days => ${daysAgo}),
            now(), now() - make_interval(days => ${daysAgo}), 'anypay', ${rub})
    returning id`;
  return Number(o!.id);
}

describe("Основные настройки", () => {
  test("the bot token is write-only: the page says it is set and never shows it", async () => {
    const bad = await c.post("/settings/token", { botToken: "not a token", action: "save" }, { htmx: true });
    expect(bad.status).toBe(422);
    const badHtml = await bad.text();
    expect(badHtml).toContain('id="e-botToken"');
    expect(badHtml).not.toContain("<html");

    const res = await c.post("/settings/token", { botToken: TOKEN, action: "save" }, { htmx: true });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("задан");
    expect(html).not.toContain("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw");
    expect((await t.shop.settings.load()).botToken).toBe(TOKEN);

    const page = await c.page("/settings");
    expect(page.html).toContain("Токен: <strong");
    expect(page.html).not.toContain("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw");
    expect(page.html).toContain('<section id="broadcast" class="card stack"><h2>Рассылка всем пользователям</h2>');

    const cleared = await c.post("/settings/token", { action: "clear" }, { htmx: true });
    expect(await cleared.text()).toContain("не задан");
    expect((await t.shop.settings.load()).botToken).toBeNull();
  });

  test("bot on/off and maintenance switch and take effect in the shop's settings", async () => {
    expect((await c.post("/settings/bot", { botEnabled: "on" }, { htmx: true })).status).toBe(200);
    expect((await t.shop.settings.load()).botEnabled).toBe(true);
    const res = await c.post("/settings/bot", { maintenance: "on" }, { htmx: true });
    expect(await res.text()).toContain("Технические работы начаты.");
    const s = await t.shop.settings.load();
    expect(s.maintenance).toBe(true);
    expect(s.botEnabled).toBe(true);
    // A plain form post goes back to the page.
    const plain = await c.post("/settings/bot", { botEnabled: "off" });
    expect(plain.status).toBe(303);
    expect(plain.headers.get("location")).toBe("/Morpheus%20Private/settings");
    expect((await t.shop.settings.load()).botEnabled).toBe(false);
    await c.post("/settings/bot", { maintenance: "off" }, { htmx: true });
  });

  test("AnyPay: merchant id shown, secret write-only and kept when the field is left empty", async () => {
    const bad = await c.post("/settings/anypay", { anypayMerchantId: "12ab", anypaySecretKey: "" }, { htmx: true });
    expect(bad.status).toBe(422);
    expect(await bad.text()).toContain("ID магазина — число");

    await c.post("/settings/anypay", { anypayMerchantId: "4242", anypaySecretKey: "s3cr3t-value" }, { htmx: true });
    const keep = await c.post("/settings/anypay", { anypayMerchantId: "4243", anypaySecretKey: "" }, { htmx: true });
    const html = await keep.text();
    expect(html).toContain('value="4243"');
    expect(html).toContain("Секретный ключ — задан");
    expect(html).not.toContain("s3cr3t-value");
    const s = await t.shop.settings.load();
    expect(s.anypayMerchantId).toBe("4243");
    expect(s.anypaySecretKey).toBe("s3cr3t-value");

    await c.post("/settings/test-payments", { testPayments: "on" }, { htmx: true });
    expect((await t.shop.settings.load()).testPayments).toBe(true);
  });

  test("«Оплата звёздами Telegram» switches Stars on and off; a forged switch is refused", async () => {
    expect((await c.page("/settings")).html).toContain("Оплата звёздами Telegram");
    const on = await c.post("/settings/stars", { starsEnabled: "on" }, { htmx: true });
    expect(await on.text()).toContain("Оплата звёздами включена");
    expect((await t.shop.settings.load()).starsEnabled).toBe(true);
    const forged = await c.post("/settings/stars", { starsEnabled: "maybe" }, { htmx: true });
    expect(forged.status).toBe(422);
    expect((await t.shop.settings.load()).starsEnabled).toBe(true);
    await c.post("/settings/stars", { starsEnabled: "off" }, { htmx: true });
    expect((await t.shop.settings.load()).starsEnabled).toBe(false);
  });

  test("«Лимиты и пороги» sets the buyer's HWID reset cooldown; a number out of range is refused next to the field", async () => {
    const page = await c.page("/settings");
    expect(page.html).toContain("Сброс привязки покупателем: раз в N дней");
    expect(page.html).toMatch(/name="hwid_reset_cooldown_days"[^>]*value="7"/);

    for (const typed of ["366", "-1", "3.5", "три"]) {
      const bad = await c.post("/settings/numbers", { hwid_reset_cooldown_days: typed }, { htmx: true });
      expect(bad.status).toBe(422);
      const html = await bad.text();
      expect(html).toContain('id="e-hwid_reset_cooldown_days"');
      expect(html).toContain("Целое число от 0 до 365");
      expect(html).toContain(`value="${typed}"`);
    }
    expect((await t.shop.settings.load()).hwidResetCooldownDays).toBe(7);

    const ok = await c.post("/settings/numbers", { hwid_reset_cooldown_days: "0" }, { htmx: true });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("Сохранено.");
    expect((await t.shop.settings.load()).hwidResetCooldownDays).toBe(0);
    // A plain browser post goes back to the page.
    const plain = await c.post("/settings/numbers", { hwid_reset_cooldown_days: "14" });
    expect(plain.status).toBe(303);
    expect((await t.shop.settings.load()).hwidResetCooldownDays).toBe(14);
    await t.shop.settings.update({ hwidResetCooldownDays: 7 });
  });
});

describe("Администраторы", () => {
  test("adds a numeric Telegram id with a note, refuses anything else next to the field, removes", async () => {
    const bad = await c.post("/admins", { telegramId: "12abc", note: "" }, { htmx: true });
    expect(bad.status).toBe(422);
    const badHtml = await bad.text();
    expect(badHtml).toContain('id="e-telegramId"');
    expect(badHtml).toContain('value="12abc"');

    const ok = await c.post("/admins", { telegramId: "777000111", note: XSS }, { htmx: true });
    expect(ok.status).toBe(200);
    const html = await ok.text();
    expect(html).toContain("777000111");
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(html).not.toContain(XSS);
    expect(await t.shop.admins.isAdmin(777000111)).toBe(true);

    const removed = await c.post("/admins/777000111/delete", {}, { htmx: true });
    expect(await removed.text()).toContain("больше не администратор");
    expect(await t.shop.admins.isAdmin(777000111)).toBe(false);
    expect((await c.post("/admins/777000111/delete", {}, { htmx: true })).status).toBe(404);
  });
});

describe("Администраторы: what the list promises", () => {
  test("adding an admin again keeps their note and says so; only admins who wrote to the bot link to a page", async () => {
    await t.shop.users.touch({ id: 777000222, firstName: "Олег", username: "oleg" });
    await c.post("/admins", { telegramId: "777000222", note: "владелец" }, { htmx: true });
    await c.post("/admins", { telegramId: "777000333", note: "помощник" }, { htmx: true });
    const again = await c.post("/admins", { telegramId: "777000222", note: "" }, { htmx: true });
    expect(again.status).toBe(409);
    expect(await again.text()).toContain("777000222 уже администратор — ничего не изменено");
    const admins = await t.shop.admins.list();
    expect(admins.find((a) => a.telegramId === 777000222)?.note).toBe("владелец");

    const page = (await c.page("/admins")).html;
    expect(page).toContain('<a href="/Morpheus%20Private/users/777000222">777000222</a>');
    expect(page).toContain("Олег (@oleg)");
    // Never wrote to the bot: no link to a page that would be a 404.
    expect(page).not.toContain("/users/777000333");
    expect(page).toContain("ещё не писал боту");
    expect((await c.page("/users/777000222")).status).toBe(200);
  });
});

describe("Пользователи", () => {
  beforeAll(async () => {
    await t.shop.users.touch({ id: 5001, firstName: XSS, username: "evil_user" });
    await t.shop.users.touch({ id: 5002, firstName: "Иван", lastName: "Петров", username: "ivanp" });
    await t.shop.users.touch({ id: 5003, firstName: "Мария", username: "masha" });
    await t.shop.users.logEvent(5001, "start", { note: XSS });
  });

  test("a Telegram first name with <script> renders as text in the list and on the user's page", async () => {
    const list = await c.page("/users");
    expect(list.html).toContain("&lt;script&gt;alert(1)&lt;/script&gt; (@evil_user)");
    expect(list.html).not.toContain(XSS);
    const page = await c.page("/users/5001");
    expect(page.status).toBe(200);
    expect(page.html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(page.html).not.toContain(XSS);
    expect(page.html).toContain("Запустил бота");
  });

  test("search by id, @username and name prefix; a partial request gets only the list", async () => {
    const find = async (q: string) => {
      const res = await c.get(`/users?q=${encodeURIComponent(q)}`, { htmx: "partial", target: "div#users-list" });
      const html = await res.text();
      expect(html).toStartWith('<div id="users-list">');
      return html;
    };
    expect(await find("5002")).toContain("Иван Петров");
    expect(await find("@mas")).toContain("Мария");
    expect(await find("@mas")).not.toContain("Иван");
    expect(await find("пет")).toContain("Иван Петров");
    expect(await find("иван пет")).toContain("Иван Петров");
    expect(await find("%")).toContain("Никого не нашлось");
  });

  test("a user's page shows statistics, keys with state and expiry, orders and the log", async () => {
    const product = await t.shop.products.create({ name: "UserStatsProduct" });
    await t.shop.keys.generate(product.id, 7, 2);
    const gifted = await t.shop.keys.issue(product.id, 7, 5002);
    await paidOrder(product.id, 5002, 899, 0);
    const page = await c.page("/users/5002");
    expect(page.html).toContain("Иван Петров");
    expect(page.html).toContain("899");
    expect(page.html).toContain(gifted.key);
    expect(page.html).toContain("не активирован");
    expect(page.html).toContain(`Получил ключ MPH-…${gifted.key.slice(-4)} без оплаты: «UserStatsProduct» на 7 дней`);
    expect((await c.page("/users/999999")).status).toBe(404);
    expect((await c.page("/users/abc")).status).toBe(404);
  });
});

describe("Заказы and Главная", () => {
  test("orders filter by status; a paid order without stock is flagged on the dashboard", async () => {
    const product = await t.shop.products.create({ name: `Orders ${IMG_XSS}` });
    const a = await paidOrder(product.id, 6001, 1000, 0, "delivered");
    const b = await paidOrder(product.id, 6002, 2000, 3, "paid_no_stock");
    const all = await c.page("/orders");
    expect(all.html).toContain(`#${a}`);
    expect(all.html).toContain(`#${b}`);
    expect(all.html).toContain("Orders &lt;img src=x onerror=alert(1)&gt;");
    expect(all.html).not.toContain(IMG_XSS);
    const filtered = await c.page("/orders?status=paid_no_stock");
    expect(filtered.html).toContain(`#${b}`);
    expect(filtered.html).not.toContain(`#${a}<`);
    const byNumber = await c.get(`/orders?q=${a}`, { htmx: "partial", target: "div#orders-list" });
    const part = await byNumber.text();
    expect(part).toStartWith('<div id="orders-list">');
    expect(part).toContain(`#${a}`);

    const dash = await c.page("/");
    expect(dash.html).toContain("Оплачены, но ключей нет: 1</a>");
    expect(dash.html).toContain('<svg viewBox="0 0 300 100" role="img"');
  });

  test("the dashboard counts money today / 7 / 30 days without test payments", async () => {
    const s = await createTestShop();
    const { password } = await s.shop.accounts.reset("admin");
    const d = new PanelClient(s);
    await d.login("admin", password);
    const product = await s.shop.products.create({ name: "Sales" });
    const add = async (rub: number, daysAgo: number, test = false) => {
      await s.sql`insert into bot_users (telegram_id) values (42) on conflict do nothing`;
      await s.sql`
        insert into orders (user_id, product_id, days, amount_rub, status, reserved_until, paid_at, test, provider,
                            paid_rub)
        values (42, ${product.id}, 1, ${rub}, 'delivered', now(), now() - make_interval(days => ${daysAgo}), ${test},
                'anypay', ${rub})`;
    };
    await add(100, 0);
    await add(200, 3);
    await add(400, 20);
    await add(800, 40);
    await add(5000, 0, true);
    const html = (await d.page("/")).html;
    const stat = (label: string) =>
      new RegExp(`${label}</p><p class="stat-value">([^<]+)</p><p class="stat-sub">([^<]+)<`).exec(html);
    expect(stat("Сегодня")?.slice(1)).toEqual(["100 ₽", "1 продажа"]);
    expect(stat("7 дней")?.slice(1)).toEqual(["300 ₽", "2 продажи"]);
    expect(stat("30 дней")?.slice(1)).toEqual(["700 ₽", "3 продажи"]);
    expect(html).toContain("Выручка за 30 дней: 700 ₽");
    await s.close();
  });

  test("low stock: a priced duration with fewer than 5 keys is warned about, with none it says it is off sale", async () => {
    const product = await t.shop.products.create({ name: "LowStock" });
    await t.shop.products.setPrice(product.id, 1, 299);
    await t.shop.products.setPrice(product.id, 30, 1999);
    await t.shop.keys.generate(product.id, 1, 3);
    await t.shop.keys.generate(product.id, 30, 50);
    const html = (await c.page("/")).html;
    expect(html).toMatch(/LowStock<\/span> 1 день<\/a><span class="badge badge-warn">осталось 3</);
    expect(html).not.toMatch(/LowStock<\/span> 30 дней/);
    await t.sql`delete from keys where product_id = ${product.id} and days = 1`;
    expect((await c.page("/")).html).toMatch(/LowStock<\/span> 1 день<\/a><span class="badge badge-bad">нет ключей/);
  });
});

describe("small things every page gets right", () => {
  test("an empty revenue chart has no 0/0/0 axis and says there were no sales", async () => {
    const days = Array.from({ length: 30 }, (_, i) => ({
      day: `2026-11-${String(i + 1).padStart(2, "0")}`,
      rub: 0,
      orders: 0,
    }));
    const html = String(await RevenueChart({ revenue: days }));
    expect(html).toContain('<div class="chart-y" aria-hidden="true"></div>');
    expect(html).toContain("За 30 дней продаж не было");
    const sold = String(await RevenueChart({ revenue: days.map((d, i) => (i === 3 ? { ...d, rub: 700 } : d)) }));
    expect(sold).toContain("<span>1 000</span>".replace(" ", "\u00a0"));
  });

  test("every page names its icon, so the browser does not ask the site root for /favicon.ico (a 404)", async () => {
    for (const path of ["/", "/settings", "/products"]) {
      const html = (await c.page(path)).html;
      const icon = /<link rel="icon" type="image\/svg\+xml" href="([^"]+)"\/>/.exec(html)?.[1];
      expect(icon).toStartWith("/Morpheus%20Private/static/favicon.svg?v=");
      const res = await t.app.handle(new Request(`http://localhost${icon}`));
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("image/svg+xml");
    }
    expect((await new PanelClient(t).page("/")).html).toContain('<link rel="icon"');
  });
});
