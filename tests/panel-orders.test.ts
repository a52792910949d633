import { afterAll, beforeAll, describe, expect, setDefaultTimeout, spyOn, test } from "bun:test";
import { needsOwner } from "../src/shop/orders/attention.ts";
import type { Order } from "../src/shop/orders/orders.ts";
import { rub } from "../templates/format.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { createPayShop, type PayShop } from "./helpers/payments.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

/**
 * The order page of the panel and what the owner settles there, through the real app (app.handle), a real
 * database, the delivery job and the fake Bot API.
 */

let s: PayShop;
let c: PanelClient;
let nextBuyer = 300_000;
const XSS = "<script>alert(1)</script>";

beforeAll(async () => {
  s = await createPayShop();
  const { password } = await s.shop.accounts.reset("admin");
  c = new PanelClient(s);
  await c.login("admin", password);
  await c.page("/orders");
}, 20_000);
afterAll(async () => {
  await s.stop();
}, 20_000);

/** Waits until the order's delivery has the status (the delivery job runs in the background). */
async function deliveryIs(orderId: number, status: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await s.shop.deliveries.byOrder(orderId))?.status !== status) {
    if (Date.now() > deadline) throw new Error(`delivery of order ${orderId} never became ${status}`);
    await Bun.sleep(20);
  }
}

/** A buyer pays for a product's only key after their reservation ran out and someone else took it. */
async function paidNoStockOrder(name: string): Promise<{ order: Order; productId: number; buyer: number }> {
  const product = await s.product(name, { keys: 1, build: false });
  const buyer = await s.buyer(nextBuyer++);
  const order = await s.placeOrder(buyer, product.id);
  await s.sql`update orders set reserved_until = now() - interval '1 second' where id = ${order.id}`;
  await s.shop.orders.expireDue();
  await s.placeOrder(await s.buyer(nextBuyer++), product.id);
  expect((await s.notifier.send(s.notifier.paid(order))).body).toBe("OK");
  expect((await s.shop.orders.byId(order.id))?.status).toBe("paid_no_stock");
  return { order, productId: product.id, buyer };
}

describe("the order page", () => {
  test("shows the buyer, key, delivery, the payments ledger (paid twice) and the order's log; names are text", async () => {
    const product = await s.product("Ledger", { keys: 1 });
    const buyer = nextBuyer++;
    await s.shop.users.touch({ id: buyer, firstName: XSS, username: "ledger_buyer" });
    const order = await s.placeOrder(buyer, product.id);
    const first = s.notifier.paid(order, { method: "qiwi" });
    expect((await s.notifier.send(first)).body).toBe("OK");
    await s.delivered(order.id);
    const second = s.notifier.paid(order);
    const errors = spyOn(console, "error").mockImplementation(() => {});
    expect((await s.notifier.send(second)).body).toBe("OK");
    errors.mockRestore();

    const page = await c.page(`/orders/${order.id}`);
    expect(page.status).toBe(200);
    const html = page.html;
    expect(html).toContain(`<h1>Заказ #${order.id}</h1>`);
    // The buyer, by name (escaped) with a link to their page.
    expect(html).toContain(`href="/Morpheus%20Private/users/${buyer}"`);
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt; (@ledger_buyer)");
    expect(html).not.toContain(XSS);
    expect(html).toContain("Ledger");
    expect(html).toContain("30 дней");
    expect(html).toContain(rub(1999));
    expect(html).toContain("Выдан");
    // The key, linked to its own page, with its state.
    const key = product.keys[0]!;
    const [keyRow] = await s.sql<{ id: string }[]>`select id from keys where key = ${key}`;
    expect(html).toContain(`href="/Morpheus%20Private/keys/${keyRow!.id}"`);
    expect(html).toContain("не активирован");
    // The delivery.
    expect(html).toContain("Доставлен");
    expect(html).not.toContain("Отправить ещё раз");
    // The ledger: both payments, the second flagged, with a warning above.
    expect(html).toContain(first.transaction_id!);
    expect(html).toContain(second.transaction_id!);
    expect(html).toContain("1999.00 RUB");
    expect(html).toContain("qiwi");
    expect(html).toContain("зачтён");
    expect(html).toContain("повторная оплата — верните в AnyPay");
    expect(html).toContain("Платежей: 2. Заказ оплачен больше одного раза");
    // The buyer's log for this order.
    expect(html).toContain("Оформил заказ");
    expect(html).toContain("Оплатил заказ");
    expect(html).toMatch(/Получил (архив и )?ключ MPH-…/);
    expect(html).toMatch(/Оплатил уже оплаченный заказ #\d+ ещё раз — 1999\.00 RUB/);
    // On the order's own page its log lines do not link back to the page itself.
    expect(html).not.toContain(`>заказ #${order.id}</a>`);
    // No close form: the order is not waiting for a key.
    expect(html).not.toContain("Закрыть заказ");

    // Every list links to it: the orders tab, the dashboard's recent orders, the buyer's page, the sold key.
    const link = `<a href="/Morpheus%20Private/orders/${order.id}">#${order.id}</a>`;
    expect((await c.page("/orders")).html).toContain(link);
    const dashboard = (await c.page("/")).html;
    expect(dashboard).toContain(link);
    expect(dashboard).toContain("Оплачены дважды (за 30 дней): ");
    expect((await c.page(`/users/${buyer}`)).html).toContain(link);
    expect((await c.page(`/products/${product.id}/keys?list=sold`)).html).toContain(
      `href="/Morpheus%20Private/orders/${order.id}"`,
    );
  });

  test("an unpaid order shows its reservation and its reserved key, and has nothing to deliver", async () => {
    const product = await s.product("Unpaid", { keys: 1, build: false });
    const order = await s.placeOrder(await s.buyer(nextBuyer++), product.id);
    const { html } = await c.page(`/orders/${order.id}`);
    expect(html).toContain("Ожидает оплаты");
    expect(html).toContain("Бронь до");
    expect(html).toContain("зарезервирован для заказа");
    const [keyRow] = await s.sql<{ id: string }[]>`select id from keys where order_id = ${order.id}`;
    expect(html).toContain(`href="/Morpheus%20Private/keys/${keyRow!.id}"`);
    expect(html).toContain("Заказ не оплачен — доставлять нечего.");
    expect(html).toContain("Платежей нет.");
  });

  test("unknown and garbage ids answer 404 pages, never a 500", async () => {
    for (const id of ["999999999", "0", "abc", "1e3", "-1", "99999999999999999999", "%ZZ", "1%20"]) {
      const res = await c.get(`/orders/${id}`);
      expect(res.status).toBe(404);
      const html = await res.text();
      expect(html).toContain("Не найдено");
      expect(html).toContain('<nav class="tabs"');
    }
    const fragment = await c.get("/orders/999999999", { htmx: "partial", target: "#order" });
    expect(fragment.status).toBe(404);
    expect(await fragment.text()).toStartWith('<div class="notice notice-error"');
    expect((await c.post("/orders/999999999/retry", {}, { htmx: true })).status).toBe(404);
    expect((await c.post("/orders/abc/close", { note: "x" }, { htmx: true })).status).toBe(404);
  });
});

describe("a delivery the buyer blocked", () => {
  test("is flagged, and «Отправить ещё раз» sends it again once the buyer has unblocked the bot", async () => {
    const quiet = [spyOn(console, "warn"), spyOn(console, "error")].map((m) => m.mockImplementation(() => {}));
    const product = await s.product("Blocked", { keys: 1 });
    const buyer = await s.buyer(nextBuyer++);
    const unblock = s.tg.onCall((call) =>
      Number(call.params.chat_id) === buyer
        ? { code: 403, description: "Forbidden: bot was blocked by the user" }
        : undefined,
    );
    const order = await s.placeOrder(buyer, product.id);
    await s.notifier.send(s.notifier.paid(order));
    await deliveryIs(order.id, "blocked");

    // The tab carries a badge, the orders tab says what to do, the row is flagged.
    const list = (await c.page("/orders?status=paid")).html;
    const waiting = needsOwner(await s.shop.orders.attention());
    expect(waiting).toBeGreaterThan(0);
    expect(list).toContain(
      `<span>Заказы</span><span id="orders-badge" class="tab-badge" title="Заказы, которые ждут вас">${waiting}</span>`,
    );
    expect(list).toContain("Не доставлены: ");
    expect(list).toContain("Не доставлен: покупатель заблокировал бота");
    const page = (await c.page(`/orders/${order.id}`)).html;
    expect(page).toContain("Не доставлен: покупатель заблокировал бота");
    expect(page).toContain("Forbidden: bot was blocked by the user");
    expect(page).toContain("заблокировал бота");
    expect(page).toContain(`hx-post="/Morpheus%20Private/orders/${order.id}/retry"`);
    expect(page).toContain("Отправить ещё раз");

    // The buyer unblocks the bot (but writes nothing: nothing resends by itself); the owner presses the button.
    unblock();
    const sendsBefore = s.tg.callsOf("sendDocument", buyer).length;
    expect(sendsBefore).toBe(1);
    const res = await c.post(`/orders/${order.id}/retry`, {}, { htmx: true, target: "#order" });
    expect(res.status).toBe(200);
    const fragment = await res.text();
    expect(fragment).toStartWith('<div id="order">');
    expect(fragment).toContain("Доставка снова в очереди");
    await s.delivered(order.id);
    expect(s.tg.callsOf("sendDocument", buyer)).toHaveLength(sendsBefore + 1);
    const caption = String(s.tg.callsOf("sendDocument", buyer).at(-1)!.params.caption);
    expect(caption).toContain(`Ключ: ${product.keys[0]}`);
    expect((await s.shop.orders.byId(order.id))?.status).toBe("delivered");
    // The delivery got through, so the buyer is no longer marked as blocking the bot.
    expect((await s.shop.users.byId(buyer))?.blockedAt).toBeNull();

    const after = (await c.page(`/orders/${order.id}`)).html;
    expect(after).toContain("Доставлен");
    expect(after).not.toContain("Отправить ещё раз");
    // Pressing it again (a stale page) is refused with the reason, as a fragment or a whole page.
    const again = await c.post(`/orders/${order.id}/retry`, {}, { htmx: true, target: "#order" });
    expect(again.status).toBe(409);
    expect(await again.text()).toContain("Отправлять ещё раз нечего: сейчас: «Доставлен».");
    const plain = await c.post(`/orders/${order.id}/retry`);
    expect(plain.status).toBe(409);
    expect(await plain.text()).toContain("<html");
    expect(s.tg.callsOf("sendDocument", buyer)).toHaveLength(sendsBefore + 1);
    for (const m of quiet) m.mockRestore();
  });
});

describe("a paid order with no key left", () => {
  test("closing it needs a note, changes its status, and new stock no longer goes to that buyer", async () => {
    const errors = spyOn(console, "error").mockImplementation(() => {});
    const { order, productId, buyer } = await paidNoStockOrder("Refunded");

    expect((await c.page("/")).html).toContain("Оплачены, но ключей нет: ");
    const page = (await c.page(`/orders/${order.id}`)).html;
    expect(page).toContain("Оплачен, нет ключей");
    expect(page).toContain("Закрыть заказ (деньги возвращены)");
    expect(page).toContain('hx-confirm="Закрыть заказ? Новые ключи этому покупателю больше не придут."');

    // Without a note: the message under the field, nothing changes.
    const empty = await c.post(`/orders/${order.id}/close`, { note: "  " }, { htmx: true, target: "#order" });
    expect(empty.status).toBe(422);
    const emptyHtml = await empty.text();
    expect(emptyHtml).toStartWith('<div id="order">');
    expect(emptyHtml).toContain('id="e-note"');
    expect(emptyHtml).toContain("Напишите, что сделано");
    const tooLong = await c.post(`/orders/${order.id}/close`, { note: "x".repeat(501) }, { htmx: true });
    expect(tooLong.status).toBe(422);
    expect(await tooLong.text()).toContain("Не длиннее 500 символов");
    // Invisible characters are no note (and a NUL would make Postgres refuse the update).
    const invisible = await c.post(`/orders/${order.id}/close`, { note: "\u0000\u0007 " }, { htmx: true });
    expect(invisible.status).toBe(422);
    expect((await s.shop.orders.byId(order.id))?.status).toBe("paid_no_stock");

    const note = `деньги возвращены ${XSS}`;
    const closed = await c.post(`/orders/${order.id}/close`, { note }, { htmx: true, target: "#order" });
    expect(closed.status).toBe(200);
    const closedHtml = await closed.text();
    expect(closedHtml).toContain("Заказ закрыт: новые ключи этому покупателю не уйдут.");
    expect(closedHtml).toContain("Закрыт без ключа");
    expect(closedHtml).toContain("деньги возвращены &lt;script&gt;alert(1)&lt;/script&gt;");
    expect(closedHtml).not.toContain(XSS);
    expect(closedHtml).toContain(`Заказ #${order.id} закрыт администратором: «деньги возвращены`);
    expect(closedHtml).not.toContain("Закрыть заказ (деньги возвращены)");
    // The tab's badge is counted again (one less) and swapped out of band.
    const left = needsOwner(await s.shop.orders.attention());
    expect(page).toContain(`title="Заказы, которые ждут вас">${left + 1}</span>`);
    expect(closedHtml).toContain(
      left === 0 ? '<span id="orders-badge" hx-swap-oob="true"></span>' : `hx-swap-oob="true">${left}</span>`,
    );
    expect(await s.shop.orders.byId(order.id)).toMatchObject({ status: "failed", failure: note });

    // New stock: the closed order is not served, the key stays on sale, the buyer hears nothing more.
    const messagesBefore = s.tg.callsOf("sendMessage", buyer).length;
    const [fresh] = await s.shop.keys.generate(productId, 30, 1);
    expect(await s.shop.orders.fulfilWaiting()).toBe(0);
    const [key] = await s.sql<{ state: string; order_id: string | null }[]>`
      select state, order_id from keys where key = ${fresh!}`;
    expect(key).toEqual({ state: "available", order_id: null });
    await Bun.sleep(200);
    expect(s.tg.callsOf("sendMessage", buyer)).toHaveLength(messagesBefore);

    // Closing twice (a second tab) says why not.
    const twice = await c.post(`/orders/${order.id}/close`, { note: "again" }, { htmx: true });
    expect(twice.status).toBe(409);
    expect(await twice.text()).toContain(
      "Закрыть можно только оплаченный заказ без ключа, а этот — «Закрыт без ключа».",
    );
    errors.mockRestore();
  });

  test("the actions refuse a POST without the CSRF token and change nothing", async () => {
    const errors = spyOn(console, "error").mockImplementation(() => {});
    const warns = spyOn(console, "warn").mockImplementation(() => {});
    const { order } = await paidNoStockOrder("NoCsrf");
    const close = await c.post(`/orders/${order.id}/close`, { note: "refunded" }, { csrf: false });
    expect(close.status).toBe(403);
    expect(await close.text()).toContain("нет действительного CSRF-токена");
    const htmx = await c.post(`/orders/${order.id}/close`, { note: "refunded" }, { csrf: false, htmx: true });
    expect(htmx.status).toBe(403);
    const forged = await c.post(`/orders/${order.id}/close`, { note: "refunded" }, { csrf: "forged-token" });
    expect(forged.status).toBe(403);
    const retry = await c.post(`/orders/${order.id}/retry`, {}, { csrf: false });
    expect(retry.status).toBe(403);
    expect((await s.shop.orders.byId(order.id))?.status).toBe("paid_no_stock");
    // The same form with the token works (a plain browser post answers the whole page).
    const ok = await c.post(`/orders/${order.id}/close`, { note: "refunded" });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("<html");
    expect((await s.shop.orders.byId(order.id))?.status).toBe("failed");
    errors.mockRestore();
    warns.mockRestore();
  });
});

test("a notification AnyPay sent but the shop refused is listed on the orders tab and the dashboard, as text", async () => {
  const product = await s.product("Refused", { keys: 1, build: false });
  const order = await s.placeOrder(await s.buyer(nextBuyer++), product.id);
  // The amount AnyPay reports is not the order's: refused, and kept for the owner with AnyPay's retries counted.
  const fields = s.notifier.paid(order, { amount: "1.00", transaction_id: `${XSS}-tx` });
  for (let i = 0; i < 2; i++) expect((await s.notifier.send(fields)).status).toBe(400);
  for (const path of ["/orders", "/"]) {
    const { html: page } = await c.page(path);
    expect(page).toContain("AnyPay сообщал об оплате, а магазин отклонил уведомление");
    expect(page).toContain(`сумма 1.00 не равна сумме заказа ${order.amountRub} ₽`);
    expect(page).toContain(`href="/Morpheus%20Private/orders/${order.id}"`);
    expect(page).toContain("&lt;script&gt;alert(1)&lt;/script&gt;-tx");
    expect(page).not.toContain(XSS);
  }
  const [row] = await s.shop.refusedNotifications.recent(1);
  expect(row).toMatchObject({ tries: 2, payId: String(order.id), amount: "1.00" });
});
