import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pressedEvent } from "../src/bot/keyboards.ts";
import { maskKey } from "../src/lib/keys.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database can take seconds on a loaded CI machine.
setDefaultTimeout(30_000);

/**
 * A buyer's log in the panel says what the person did, in words, with the names: product, duration, price, order,
 * key (masked as in the logs) — never the bot's button data or the database's ids.
 */
let t: TestShop;
let c: PanelClient;
const BUYER = 8001;

beforeAll(async () => {
  t = await createTestShop();
  const { password } = await t.shop.accounts.reset("admin");
  c = new PanelClient(t);
  await c.login("admin", password);
  await t.shop.users.touch({ id: BUYER, firstName: "Анна", username: "anna" });
});
afterAll(async () => {
  await t.close();
});

/** The log of the buyer's page as text, newest first, one line per entry. */
async function log(): Promise<string[]> {
  const { html } = await c.page(`/users/${BUYER}`);
  const list = /<ol class="log">([\s\S]*?)<\/ol>/.exec(html)?.[1] ?? "";
  return [...list.matchAll(/<span class="event">([^<]*)<\/span>/g)].map((m) =>
    m[1]!.replaceAll("&#34;", '"').replaceAll("&amp;", "&").replaceAll("&lt;", "<").replaceAll("&gt;", ">"),
  );
}

describe("the user log", () => {
  test("a purchase reads as sentences with the product, the duration, the price, the order and the masked key", async () => {
    const product = await t.shop.products.create({ name: "Rust <b>" });
    await t.shop.products.setPrice(product.id, 7, 899);
    await t.shop.keys.generate(product.id, 7, 3);
    // What the bot records for each update (src/bot/features/gatekeeping.ts), then the shop's own events.
    const pressed = async (data: string) => {
      const event = pressedEvent(data);
      await t.shop.users.logEvent(BUYER, event.kind, event.detail);
    };
    await t.shop.users.logEvent(BUYER, "message", { text: "/start" });
    await pressed("cat");
    await pressed(`p:${product.id}`);
    await pressed(`d:${product.id}:7:899`);
    await pressed(`buy:${product.id}:7:899`);
    const placed = await t.shop.orders.place({ userId: BUYER, productId: product.id, days: 7, expectedRub: 899 });
    if (placed.kind !== "placed") throw new Error(placed.kind);
    const order = placed.order;
    await t.shop.users.logEvent(BUYER, "message", { text: "когда придёт ключ?" });
    const gift = await t.shop.keys.issue(product.id, 7, BUYER);
    await pressed("bc:go:zzz-old-draft");
    await pressed("gone:123");

    const lines = await log();
    expect(lines).toEqual([
      "Нажал кнопку старого сообщения",
      "Отправил рассылку (администратор)",
      `Получил ключ ${maskKey(gift.key)} без оплаты: «Rust <b>» на 7 дней`,
      "Написал боту: «когда придёт ключ?»",
      `Оформил заказ #${order.id}: «Rust <b>» на 7 дней за 899 ₽`,
      "Подтвердил покупку: «Rust <b>» на 7 дней за 899 ₽",
      "Выбрал «Rust <b>» на 7 дней за 899 ₽",
      "Открыл товар «Rust <b>»",
      "Открыл каталог",
      "Запустил бота",
    ]);
    const { html } = await c.page(`/users/${BUYER}`);
    // Names are text, and none of the internal codes of before.
    expect(html).toContain("«Rust &lt;b&gt;»");
    expect(html).not.toContain(`d:${product.id}:7:899`);
    expect(html).not.toContain("button data");
    expect(html).not.toMatch(/дней: \d|ключ: \d|товар: \d/);
    expect(html.match(/Выбрал/g)).toHaveLength(1);
    // The order's entries link to it.
    expect(html).toContain(`href="/Morpheus%20Private/orders/${order.id}">заказ #${order.id}</a>`);
  });

  test("events recorded before this change (raw button data) read the same once migrated", async () => {
    const product = await t.shop.products.create({ name: "Escape" });
    const old = 8002;
    await t.shop.users.touch({ id: old, firstName: "Old" });
    for (const data of ["cat", "my", `p:${product.id}`, `d:${product.id}:30:1990`, `buy:${product.id}:30:1990`]) {
      await t.sql`insert into user_events (user_id, kind, detail) values (${old}, 'button', ${t.sql.json({ data })})`;
    }
    await t.sql`insert into user_events (user_id, kind, detail) values (${old}, 'button', ${t.sql.json({ data: "adm:mt:1" })})`;
    // The migration's statements are safe to run again: this applies them to the rows just written.
    await t.sql.unsafe(await readFile(join(import.meta.dir, "..", "sql", "0013_user_event_words.sql"), "utf8"));
    const rows = await t.sql<{ kind: string; detail: Record<string, unknown> }[]>`
      select kind, detail from user_events where user_id = ${old} order by id`;
    expect([...rows]).toEqual([
      { kind: "catalogue", detail: {} },
      { kind: "purchases", detail: {} },
      { kind: "product_viewed", detail: { productId: product.id } },
      { kind: "duration_chosen", detail: { productId: product.id, days: 30, rub: 1990 } },
      { kind: "purchase_confirmed", detail: { productId: product.id, days: 30, rub: 1990 } },
      { kind: "maintenance_switched", detail: { on: true } },
    ]);
    // What the bot records today for the same presses is the same.
    expect(pressedEvent(`d:${product.id}:30:1990`)).toEqual({
      kind: "duration_chosen",
      detail: { productId: product.id, days: 30, rub: 1990 },
    });
    const { html } = await c.page(`/users/${old}`);
    expect(html).toMatch(/Выбрал «Escape» на 30 дней за 1\s990 ₽/);
    expect(html).toContain("Начал технические работы (администратор)");
  });
});
