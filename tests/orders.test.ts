import { afterAll, beforeAll, describe, expect, setDefaultTimeout, spyOn, test } from "bun:test";
import { CATALOGUE_CACHE_KEY } from "../src/cache/catalogue.ts";
import { startExpiryJob } from "../src/jobs/expiry.ts";
import { ADMIN_ID, createPayShop, type PayShop } from "./helpers/payments.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

let s: PayShop;

beforeAll(async () => {
  s = await createPayShop();
}, 20_000);
afterAll(async () => {
  await s.stop();
}, 20_000);

const keyIn = (text: unknown) => /Ключ: (\S+)/.exec(String(text))?.[1];

/** Moves an order's reservation into the past, as if config.reservationMinutes had gone by. */
async function lapse(orderId: number): Promise<void> {
  await s.sql`update orders set reserved_until = now() - interval '1 second' where id = ${orderId}`;
}

describe("buying the last keys", () => {
  test("50 buyers confirming at once for 10 keys: 10 reservations and 40 clean out_of_stock answers", async () => {
    const product = await s.product("Rush", { keys: 10, build: false });
    const buyers = await Promise.all(Array.from({ length: 50 }, (_, i) => s.buyer(200_000 + i)));
    const results = await Promise.all(
      buyers.map((userId) => s.shop.orders.place({ userId, productId: product.id, days: 30 })),
    );
    const placed = results.filter((r) => r.kind === "placed");
    expect(placed).toHaveLength(10);
    expect(results.filter((r) => r.kind === "out_of_stock")).toHaveLength(40);
    const keys = await s.sql<{ state: string; order_id: string | null }[]>`
      select state, order_id from keys where product_id = ${product.id}`;
    expect(keys.every((k) => k.state === "reserved")).toBe(true);
    expect(new Set(keys.map((k) => k.order_id)).size).toBe(10);

    // …and the 10 of them paying at the same moment get 10 different keys, each delivered once.
    const orders = placed.map((r) => (r.kind === "placed" ? r.order : null)!);
    const answers = await Promise.all(orders.map((order) => s.notifier.send(s.notifier.paid(order))));
    expect(answers.every((a) => a.status === 200 && a.body === "OK")).toBe(true);
    await Promise.all(orders.map((order) => s.delivered(order.id)));
    const sent = orders.map((order) => s.tg.callsOf("sendMessage", order.userId));
    expect(sent.every((calls) => calls.length === 1)).toBe(true);
    const delivered = sent.map((calls) => keyIn(calls[0]!.params.text));
    expect(new Set(delivered).size).toBe(10);
    expect(delivered.sort()).toEqual(product.keys.sort());
    const sold = await s.sql<{ key: string; buyer_id: string; order_id: string }[]>`
      select key, buyer_id, order_id from keys where product_id = ${product.id} and state = 'sold'`;
    for (const order of orders) {
      const mine = sold.filter((k) => Number(k.order_id) === order.id);
      expect(mine).toHaveLength(1);
      expect(Number(mine[0]!.buyer_id)).toBe(order.userId);
    }
  });

  test("a buyer who confirms twice gets the same unpaid order back, not a second key", async () => {
    const product = await s.product("Twice", { keys: 3, build: false });
    const buyer = await s.buyer(200_100);
    const first = await s.shop.orders.place({ userId: buyer, productId: product.id, days: 30 });
    const again = await s.shop.orders.place({ userId: buyer, productId: product.id, days: 30 });
    expect(first.kind).toBe("placed");
    expect(again.kind).toBe("existing");
    expect(again.kind === "existing" && first.kind === "placed" && again.order.id === first.order.id).toBe(true);
    const [row] =
      await s.sql`select count(*)::int as n from keys where product_id = ${product.id} and state = 'reserved'`;
    expect(row!.n).toBe(1);
  });

  test("confirming again after a price change moves the held key to a new order at the new price", async () => {
    const product = await s.product("Repriced", { keys: 3, build: false, rub: 1999 });
    const buyer = await s.buyer(200_102);
    const first = await s.shop.orders.place({ userId: buyer, productId: product.id, days: 30 });
    if (first.kind !== "placed") throw new Error(first.kind);
    const [held] = await s.sql`select id from keys where order_id = ${first.order.id}`;
    await s.shop.products.setPrice(product.id, 30, 2499);
    const second = await s.shop.orders.place({ userId: buyer, productId: product.id, days: 30, expectedRub: 2499 });
    if (second.kind !== "placed") throw new Error(second.kind);
    expect(second.order.amountRub).toBe(2499);
    const rows = await s.sql<{ id: string; status: string; key_id: string | null }[]>`
      select o.id, o.status, k.id as key_id from orders o left join keys k on k.order_id = o.id
      where o.user_id = ${buyer} order by o.id`;
    expect(rows.map((r) => [Number(r.id), r.status, r.key_id])).toEqual([
      [first.order.id, "expired", null],
      [second.order.id, "pending", held!.id],
    ]);
    const [counts] = await s.sql<{ reserved: number; available: number }[]>`
      select count(*) filter (where state = 'reserved')::int as reserved,
             count(*) filter (where state = 'available')::int as available
      from keys where product_id = ${product.id}`;
    expect(counts).toEqual({ reserved: 1, available: 2 });
  });

  test("a buyer whose reservation ran out a moment ago, before the expiry job, gets that order back, renewed", async () => {
    const product = await s.product("Lapsed", { keys: 1, build: false });
    const buyer = await s.buyer(200_103);
    const first = await s.shop.orders.place({ userId: buyer, productId: product.id, days: 30 });
    if (first.kind !== "placed") throw new Error(first.kind);
    await lapse(first.order.id);
    // The last key is still held by their own order: they are not told "sold out", and keep it for a new half hour.
    const again = await s.shop.orders.place({ userId: buyer, productId: product.id, days: 30 });
    if (again.kind !== "existing") throw new Error(again.kind);
    expect(again.order.id).toBe(first.order.id);
    expect(again.order.reservedUntil.getTime()).toBeGreaterThan(Date.now() + 29 * 60_000);
    const [row] = await s.sql`
      select o.status, k.state from orders o join keys k on k.order_id = o.id where o.id = ${first.order.id}`;
    expect(row).toEqual({ status: "pending", state: "reserved" });
  });

  test("a payment committing while the buyer re-confirms at a new price: the paid order stays paid", async () => {
    const product = await s.product("Racing", { keys: 3, build: false, rub: 1999 });
    const buyer = await s.buyer(200_104);
    const first = await s.shop.orders.place({ userId: buyer, productId: product.id, days: 30 });
    if (first.kind !== "placed") throw new Error(first.kind);
    await s.shop.products.setPrice(product.id, 30, 2499);
    let placing: ReturnType<typeof s.shop.orders.place> | undefined;
    // Stands in for markPaid: it holds the order's row lock while it turns the order into 'paid'.
    await s.sql.begin(async (tx) => {
      await tx`select id from orders where id = ${first.order.id} for update`;
      placing = s.shop.orders.place({ userId: buyer, productId: product.id, days: 30, expectedRub: 2499 });
      for (let waited = 0; ; waited += 20) {
        const [w] = await s.sql<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`;
        if (w!.n > 0) break;
        if (waited > 10_000) throw new Error("place() never waited for the order's lock");
        await Bun.sleep(20);
      }
      await tx`
        update orders set status = 'paid', paid_at = now(), transaction_id = 'race-200104', provider = 'anypay',
          paid_rub = amount_rub, updated_at = now()
        where id = ${first.order.id}`;
    });
    const second = await placing!;
    if (second.kind !== "placed") throw new Error(second.kind);
    expect(second.order.id).not.toBe(first.order.id);
    expect((await s.shop.orders.byId(first.order.id))?.status).toBe("paid");
  });

  test("one buyer confirming 10 times at once (no caller serialising them): one order, one reserved key", async () => {
    const product = await s.product("Burst", { keys: 10, build: false });
    const buyer = await s.buyer(200_101);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => s.shop.orders.place({ userId: buyer, productId: product.id, days: 30 })),
    );
    expect(results.filter((r) => r.kind === "placed")).toHaveLength(1);
    expect(results.filter((r) => r.kind === "existing")).toHaveLength(9);
    const ids = new Set(results.map((r) => (r.kind === "placed" || r.kind === "existing" ? r.order.id : null)));
    expect(ids.size).toBe(1);
    const [counts] = await s.sql<{ orders: number; reserved: number }[]>`
      select (select count(*)::int from orders where user_id = ${buyer}) as orders,
             (select count(*)::int from keys where product_id = ${product.id} and state = 'reserved') as reserved`;
    expect(counts).toEqual({ orders: 1, reserved: 1 });
  });
});

describe("reservations that run out", () => {
  test("the expiry job expires an unpaid order, puts its key back on sale and drops the cached catalogue", async () => {
    const product = await s.product("Expiring", { keys: 1, build: false });
    const buyer = await s.buyer(200_200);
    const order = await s.placeOrder(buyer, product.id);
    await s.cache.set(CATALOGUE_CACHE_KEY, "stale", 60_000);
    await lapse(order.id);
    const job = await startExpiryJob(s.shop, { everyMs: 50 });
    try {
      for (let i = 0; i < 100 && (await s.shop.orders.byId(order.id))?.status !== "expired"; i++) await Bun.sleep(20);
    } finally {
      await job.stop();
    }
    expect((await s.shop.orders.byId(order.id))?.status).toBe("expired");
    const [key] = await s.sql`select state, order_id from keys where product_id = ${product.id}`;
    expect(key).toEqual({ state: "available", order_id: null });
    expect(await s.cache.get(CATALOGUE_CACHE_KEY)).toBeNull();
    const [event] = await s.sql`select kind, detail from user_events where user_id = ${buyer} order by id desc limit 1`;
    expect(event).toEqual({ kind: "order_expired", detail: { orderId: order.id } });
  });

  test("a payment after the reservation lapsed and its key went to someone else still gets another key", async () => {
    const product = await s.product("Late", { keys: 2, build: false });
    const late = await s.buyer(200_300);
    const order = await s.placeOrder(late, product.id);
    const [reserved] = await s.sql<{ key: string }[]>`select key from keys where order_id = ${order.id}`;
    await lapse(order.id);
    expect(await s.shop.orders.expireDue()).toBe(1);
    const other = await s.placeOrder(await s.buyer(200_301), product.id);
    const [taken] = await s.sql<{ key: string }[]>`select key from keys where order_id = ${other.id}`;
    expect(taken!.key).toBe(reserved!.key);

    expect(await s.notifier.send(s.notifier.paid(order))).toMatchObject({ status: 200, body: "OK" });
    await s.delivered(order.id);
    const got = keyIn(s.tg.callsOf("sendMessage", late)[0]!.params.text);
    expect(got).toBeDefined();
    expect(got).not.toBe(reserved!.key);
    expect(product.keys).toContain(got!);
    const [paid] = await s.sql`select kind, detail->>'reservationLapsed' as lapsed from user_events
      where user_id = ${late} and kind = 'order_paid'`;
    expect(paid).toEqual({ kind: "order_paid", lapsed: "true" });
  });

  test("with no key left it becomes paid_no_stock, tells the admins and the buyer, and is served when keys arrive", async () => {
    const errors = spyOn(console, "error").mockImplementation(() => {});
    const product = await s.product("Gone", { keys: 1, build: false });
    const late = await s.buyer(200_400, "late_buyer");
    const order = await s.placeOrder(late, product.id);
    await lapse(order.id);
    await s.shop.orders.expireDue();
    const winner = await s.placeOrder(await s.buyer(200_401), product.id);
    expect(winner.id).not.toBe(order.id);

    const fields = s.notifier.paid(order);
    expect(await s.notifier.send(fields)).toMatchObject({ status: 200, body: "OK" });
    expect((await s.shop.orders.byId(order.id))?.status).toBe("paid_no_stock");
    const alert = await s.tg.waitFor((calls) =>
      calls.find(
        (c) =>
          c.method === "sendMessage" &&
          Number(c.params.chat_id) === ADMIN_ID &&
          String(c.params.text).includes(`№${order.id}`),
      ),
    );
    expect(String(alert.params.text)).toContain(`Заказ №${order.id} оплачен, но ключей «Gone 30 дней» не осталось.`);
    expect(String(alert.params.text)).toContain("200400 (@late_buyer)");
    expect(String(alert.params.text)).toContain(fields.transaction_id!);
    const notice = await s.tg.waitFor(() => s.tg.callsOf("sendMessage", late)[0]);
    expect(String(notice.params.text)).toStartWith(`Оплата заказа №${order.id} получена`);
    expect(await s.shop.orders.attention()).toMatchObject({ paidNoStock: 1 });
    const [payment] = await s.sql`select outcome from payments where order_id = ${order.id}`;
    expect(payment!.outcome).toBe("no_stock");
    // AnyPay retrying changes nothing.
    expect((await s.notifier.send(fields)).body).toBe("OK");
    expect((await s.shop.orders.byId(order.id))?.status).toBe("paid_no_stock");
    expect(errors.mock.calls.some((c) => String(c[0]).includes("paid_no_stock"))).toBe(true);
    errors.mockRestore();

    // The admin adds a key; the expiry job notices the new stock and serves the waiting order.
    const job = await startExpiryJob(s.shop, { everyMs: 60_000, restockDelayMs: 20 });
    try {
      await Bun.sleep(50);
      const [fresh] = await s.shop.keys.generate(product.id, 30, 1);
      await s.delivered(order.id);
      const delivered = s.tg.callsOf("sendMessage", late).find((c) => String(c.params.text).startsWith("Ключ: "));
      expect(keyIn(delivered?.params.text)).toBe(fresh!);
      expect((await s.shop.orders.byId(order.id))?.status).toBe("delivered");
    } finally {
      await job.stop();
    }
  });

  test("an admin can close a paid_no_stock order they settled by hand, so new stock does not go to it", async () => {
    const errors = spyOn(console, "error").mockImplementation(() => {});
    const product = await s.product("Closed", { keys: 1, build: false });
    const buyer = await s.buyer(200_500);
    const order = await s.placeOrder(buyer, product.id);
    await lapse(order.id);
    await s.shop.orders.expireDue();
    await s.placeOrder(await s.buyer(200_501), product.id);
    await s.notifier.send(s.notifier.paid(order));
    expect((await s.shop.orders.byId(order.id))?.status).toBe("paid_no_stock");

    expect(await s.shop.orders.closeUnfulfilled(order.id, "refunded")).toBe(true);
    expect(await s.shop.orders.closeUnfulfilled(order.id, "again")).toBe(false);
    await s.shop.keys.generate(product.id, 30, 1);
    expect(await s.shop.orders.fulfilWaiting()).toBe(0);
    expect(await s.shop.orders.byId(order.id)).toMatchObject({ status: "failed", failure: "refunded" });
    errors.mockRestore();
  });

  test("payments and expiry racing over the same lapsed orders: every paid order ends with exactly one key", async () => {
    const product = await s.product("Race", { keys: 20, build: false });
    const orders = [];
    for (let i = 0; i < 20; i++) orders.push(await s.placeOrder(await s.buyer(200_600 + i), product.id));
    await s.sql`update orders set reserved_until = now() - interval '1 second' where product_id = ${product.id}`;
    const answers = await Promise.all([
      ...orders.map((order) => s.notifier.send(s.notifier.paid(order))),
      s.shop.orders.expireDue(),
      s.shop.orders.expireDue(),
    ]);
    expect(answers.slice(0, 20).every((a) => typeof a === "object" && a.body === "OK")).toBe(true);
    const rows = await s.sql<{ order_id: string; n: number; status: string }[]>`
      select o.id as order_id, o.status, count(k.id)::int as n
      from orders o left join keys k on k.order_id = o.id and k.state = 'sold'
      where o.product_id = ${product.id} group by o.id`;
    expect(rows).toHaveLength(20);
    for (const row of rows) {
      expect(row.n).toBe(1);
      expect(["paid", "delivered"]).toContain(row.status);
    }
    const [left] =
      await s.sql`select count(*)::int as n from keys where product_id = ${product.id} and state <> 'sold'`;
    expect(left!.n).toBe(0);
  });
});

test("the panel's order list filters by status and buyer and shows the key and delivery state", async () => {
  const product = await s.product("Listed", { keys: 2, build: false });
  const buyer = await s.buyer(200_700, "listed_buyer");
  const paid = await s.placeOrder(buyer, product.id);
  await s.notifier.send(s.notifier.paid(paid));
  await s.delivered(paid.id);
  const unpaid = await s.placeOrder(await s.buyer(200_701), product.id);

  const mine = await s.shop.orders.list({ userId: buyer });
  expect(mine.rows).toHaveLength(1);
  expect(mine.rows[0]).toMatchObject({
    id: paid.id,
    status: "delivered",
    username: "listed_buyer",
    productName: "Listed",
    deliveryStatus: "sent",
  });
  expect((await s.shop.keys.itemOfOrder(paid.id))?.key).toBeOneOf(product.keys);
  const pending = await s.shop.orders.list({ status: "pending" });
  expect(pending.rows.map((o) => o.id)).toContain(unpaid.id);
  expect(pending.rows.every((o) => o.status === "pending" && o.deliveryStatus === null)).toBe(true);
});
