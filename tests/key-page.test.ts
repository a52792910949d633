import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { auth, HWID_MISMATCH, KEY_BANNED } from "./helpers/licence.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { createPayShop, type PayShop } from "./helpers/payments.ts";
import { cleanEnv, runToEnd } from "./helpers/process.ts";

// Hang protection only: cloning a database, starting servers or a CLI process can take seconds on a loaded machine.
setDefaultTimeout(30_000);

/**
 * The key page (docs/panel.md#the-key-page): one key's whole life — added, reserved, paid, sold, delivered,
 * activated, refused on other PCs, reset, banned, extended, noted — with who did each, through the real app
 * (app.handle), a real database, the delivery job and the fake Bot API.
 */

let s: PayShop;
let c: PanelClient;
let nextBuyer = 410_000;

beforeAll(async () => {
  s = await createPayShop();
  const { password } = await s.shop.accounts.reset("owner");
  c = new PanelClient(s);
  await c.login("owner", password);
  await c.page("/products");
});
afterAll(async () => {
  await s.stop();
});

async function keyId(key: string): Promise<number> {
  const [row] = await s.sql<{ id: string }[]>`select id from keys where key = ${key}`;
  return Number(row!.id);
}

/** The timeline's sentences, newest first, with who did each (tags stripped). */
async function timeline(id: number): Promise<string[]> {
  const { html, status } = await c.page(`/keys/${id}`);
  expect(status).toBe(200);
  const list = /<ol class="log">([\s\S]*?)<\/ol>/.exec(html)?.[1] ?? "";
  return [...list.matchAll(/<li[^>]*>([\s\S]*?)<\/li>/g)].map((m) =>
    m[1]!
      .replace(/<time[^>]*>[^<]*<\/time>/, "")
      .replace(/<\/span><(a|span)[^>]*>/, " | ")
      .replace(/<[^>]+>/g, "")
      .replace(/&quot;/g, '"')
      .trim(),
  );
}

describe("a key bought in the bot", () => {
  let key: string;
  let id: number;
  let buyer: number;

  test("its page tells the purchase from the stock to the buyer's chat, with who did what", async () => {
    const product = await s.product("Timeline", { keys: 1, rub: 990, build: false });
    buyer = await s.buyer(nextBuyer++, "timeline_buyer");
    const order = await s.placeOrder(buyer, product.id);
    expect((await s.notifier.send(s.notifier.paid(order, { method: "card" }))).body).toBe("OK");
    await s.delivered(order.id);
    key = product.keys[0]!;
    id = await keyId(key);
    expect(await timeline(id)).toEqual([
      "Доставлен покупателю в Telegram | магазин",
      `Продан по заказу #${order.id} | Buyer ${buyer} (@timeline_buyer), покупатель`,
      `Оплата заказа #${order.id}: 990.00 RUB (AnyPay, card) | Buyer ${buyer} (@timeline_buyer), покупатель`,
      `Зарезервирован для заказа #${order.id}: 30 дней, 990 ₽ | Buyer ${buyer} (@timeline_buyer), покупатель`,
      "Сгенерирован | магазин",
    ]);
    const { html } = await c.page(`/keys/${id}`);
    expect(html).toContain(`<h1 class="mono key-title">${key}</h1>`);
    expect(html).toContain("не активирован");
    expect(html).toContain(`href="/Morpheus%20Private/orders/${order.id}"`);
    expect(html).toContain(`href="/Morpheus%20Private/users/${buyer}"`);
  });

  test("the loader's activation and its refusals on other PCs join it, grouped per PC", async () => {
    expect((await auth(s, "Timeline", { key, uuid: "PC-OWNER" })).status).toBe(200);
    for (const uuid of ["PC-FRIEND", "PC-FRIEND", "PC-FRIEND", "PC-OTHER"]) {
      expect(await auth(s, "Timeline", { key, uuid })).toEqual(HWID_MISMATCH);
    }
    // Counted in memory, written with the others within a second (what the timer and shutdown call).
    await s.shop.licence.flush();
    const lines = await timeline(id);
    expect(lines).toContain("HWID mismatch: чужой ПК PC-FRIEND — 3 раза | лоадер");
    expect(lines).toContain("HWID mismatch: чужой ПК PC-OTHER — 1 раз | лоадер");
    expect(lines).toContain("Активирован на ПК PC-OWNER | лоадер");
    // Two foreign PCs are fewer than the alert's three: no alert.
    expect(lines.some((l) => l.startsWith("Оповещение"))).toBe(false);
  });

  test("every action on the page acts at once and adds its line, signed by the panel account", async () => {
    const act = async (action: string, fields: Record<string, string> = {}) => {
      const res = await c.post(`/keys/${id}/${action}`, fields, { htmx: true, target: "#key-main" });
      expect(res.status).toBe(200);
      return await res.text();
    };
    expect(await act("reset-hwid")).toContain("HWID сброшен: ключ привяжется к следующему ПК.");
    // The next PC to call binds it, without a new expiry.
    expect((await auth(s, "Timeline", { key, uuid: "PC-NEW" })).status).toBe(200);
    expect(await act("ban")).toContain("Ключ забанен.");
    expect(await auth(s, "Timeline", { key, uuid: "PC-NEW" })).toEqual(KEY_BANNED);
    expect(await act("unban")).toContain("Ключ разбанен.");
    expect((await auth(s, "Timeline", { key, uuid: "PC-NEW" })).status).toBe(200);
    const extended = await act("extend", { days: "5" });
    expect(extended).toContain("Продлён на 5 дн.");
    expect(await act("note", { note: "Покупатель просил перенос <b>" })).toContain("Заметка сохранена.");

    const lines = await timeline(id);
    expect(lines.slice(0, 6)).toEqual([
      "Заметка: «Покупатель просил перенос &lt;b&gt;» | owner, панель",
      expect.stringMatching(/^Продлён на 5 дней, теперь до \d\d\.\d\d\.\d{4}, \d\d:\d\d \| owner, панель$/),
      "Разбанен | owner, панель",
      "Забанен | owner, панель",
      "Привязан к новому ПК после сброса HWID на ПК PC-NEW | лоадер",
      "HWID сброшен (был PC-OWNER) | owner, панель",
    ]);
  });

  test("a refused action says why above the key and changes nothing", async () => {
    const [before] = await s.sql`select expires_at from keys where id = ${id}`;
    const res = await c.post(`/keys/${id}/extend`, { days: "0" }, { htmx: true, target: "#key-main" });
    expect(res.status).toBe(422);
    expect(await res.text()).toContain("Продление — от 1 до 3650 дней");
    const [after] = await s.sql`select expires_at from keys where id = ${id}`;
    expect(after).toEqual(before!);
    // Without the session's CSRF token nothing happens at all.
    const forged = await c.post(`/keys/${id}/ban`, {}, { csrf: false });
    expect(forged.status).toBe(403);
    expect(await auth(s, "Timeline", { key, uuid: "PC-NEW" })).toMatchObject({ status: 200 });
  });

  test("a plain form post (no JavaScript) comes back to the key's page", async () => {
    const res = await c.post(`/keys/${id}/note`, { note: "" });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe(`/Morpheus%20Private/keys/${id}`);
    expect((await timeline(id))[0]).toBe("Заметка удалена | owner, панель");
  });

  test("every place the panel shows the key links to its page", async () => {
    const link = `href="/Morpheus%20Private/keys/${id}"`;
    const [{ product_id, order_id }] = (await s.sql`select product_id, order_id from keys where id = ${id}`) as [
      { product_id: string; order_id: string },
    ];
    expect((await c.page(`/products/${product_id}/keys?list=sold`)).html).toContain(link);
    expect((await c.page(`/products/${product_id}/keys?list=sold&q=${key}`)).html).toContain(link);
    expect((await c.page(`/orders/${order_id}`)).html).toContain(link);
    expect((await c.page("/orders")).html).toContain(link);
    const user = (await c.page(`/users/${buyer}`)).html;
    expect(user).toContain(link);
    // The user's log names the key it delivered: that line links to it too.
    const log = /<ol class="log">([\s\S]*?)<\/ol>/.exec(user)?.[1] ?? "";
    const delivered = [...log.matchAll(/<li>([\s\S]*?)<\/li>/g)].map((m) => m[1]!).find((li) => li.includes("Получил"));
    expect(delivered).toContain(link);
  });
});

describe("keys that were not sold", () => {
  test("an imported key says so and who imported it; a gift says who gave it, to whom, and why", async () => {
    const product = await s.product("Origins");
    await c.page(`/products/${product.id}`);
    const imported = await c.post(`/products/${product.id}/keys/import`, { days: "30", keys: "IMPORTED-KEY-1" });
    expect(imported.status).toBe(200);
    expect(await timeline(await keyId("IMPORTED-KEY-1"))).toEqual(["Импортирован | owner, панель"]);

    const issued = await c.post(`/products/${product.id}/keys/issue`, { days: "30", to: "555", note: "за отзыв" });
    expect(issued.status).toBe(200);
    // The key just issued, shown to be copied, links to its page.
    expect(await issued.text()).toContain(`href="/Morpheus%20Private/keys/${await keyId("IMPORTED-KEY-1")}"`);
    expect(await timeline(await keyId("IMPORTED-KEY-1"))).toEqual([
      "Выдан без оплаты пользователю 555: «за отзыв» | owner, панель",
      "Импортирован | owner, панель",
    ]);
  });

  test("keys generated by the CLI are signed by it", async () => {
    const env = cleanEnv({
      DATABASE_URL: s.databaseUrl,
      REDIS_URL: s.redisUrl,
      REDIS_PREFIX: s.redisPrefix,
      DATA_DIR: s.config.dataDir,
    });
    const r = await runToEnd(["bun", "src/cli.ts", "keys:generate", "Origins", "7", "1"], env);
    expect(r.code).toBe(0);
    expect(await timeline(await keyId(r.out.trim()))).toEqual(["Сгенерирован | оператор, CLI"]);
  });

  test("an unsold key's page offers nothing that needs a sale", async () => {
    const product = await s.product("Unsold", { keys: 1 });
    const { html } = await c.page(`/keys/${await keyId(product.keys[0]!)}`);
    expect(html).toContain("в продаже");
    expect(html).toContain("Ключ ещё не продан");
    expect(html).toMatch(/<button type="submit" class="danger" disabled>Забанить<\/button>/);
  });
});

describe("bad addresses", () => {
  test("a key that does not exist, or no longer does, is the panel's 404 page", async () => {
    const product = await s.product("Deleted", { keys: 1 });
    const id = await keyId(product.keys[0]!);
    // The key's page, while it exists: the 404 below is about the key, not the address.
    expect((await c.get(`/keys/${id}`)).status).toBe(200);
    await s.shop.keys.remove({ id });
    for (const path of [
      `/keys/${id}`,
      "/keys/999999999",
      "/keys/0",
      "/keys/abc",
      "/keys/1e3",
      "/keys/-1",
      "/keys/%ZZ",
    ]) {
      const res = await c.get(path);
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
      const html = await res.text();
      expect(html).toContain("<!doctype html>");
      expect(html).toContain('aria-current="page"');
    }
    const post = await c.post(`/keys/${id}/ban`, {}, { htmx: true });
    expect(post.status).toBe(404);
    const known = await keyId((await s.product("Known", { keys: 1 })).keys[0]!);
    expect((await c.post(`/keys/${known}/explode`, {}, { htmx: true })).status).toBe(404);
  });
});
