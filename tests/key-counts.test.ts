import { afterAll, beforeAll, expect, test } from "bun:test";
import { createPayShop, type PayShop } from "./helpers/payments.ts";

/**
 * The panel's stock figures (every product page, the keys tabs, the dashboard) come from key_counts, which triggers
 * on keys keep (sql/0007_key_counts.sql), not from counting the keys. They must never drift from the keys themselves,
 * whatever changes them and however many change at once.
 */
let s: PayShop;
beforeAll(async () => {
  s = await createPayShop();
}, 20_000);
afterAll(async () => {
  await s.stop();
}, 20_000);

type Counts = Record<string, number>;

/** What the panel shows: "product:days:state" → keys, non-zero only. */
async function shown(): Promise<Counts> {
  const lines = await s.shop.products.stock();
  const out: Counts = {};
  for (const line of lines) {
    for (const d of line.durations) {
      for (const state of ["available", "reserved", "sold"] as const) {
        if (d[state] !== 0) out[`${line.productId}:${d.days}:${state}`] = d[state];
      }
    }
  }
  return out;
}

/** The truth: the keys, counted. */
async function counted(): Promise<Counts> {
  const rows = await s.sql<{ product_id: string; days: number; state: string; n: string }[]>`
    select product_id, days, state, count(*) as n from keys group by 1, 2, 3`;
  return Object.fromEntries(rows.map((r) => [`${r.product_id}:${r.days}:${r.state}`, Number(r.n)]));
}

async function expectTrue(): Promise<Counts> {
  const truth = await counted();
  expect(await shown()).toEqual(truth);
  return truth;
}

test("stock counts follow generating, importing, orders, payments, expiry, issuing and deleting, and survive compaction", async () => {
  const a = await s.product("Counted A", { keys: 40 });
  const b = await s.product("Counted B", { days: 7, keys: 5 });
  await s.shop.keys.importText(a.id, 1, "IMPORTED-1\nIMPORTED-2\nIMPORTED-3\nIMPORTED-1");
  expect((await expectTrue())[`${a.id}:30:available`]).toBe(40);

  // 30 buyers at once for product A: 30 reservations, taken one key at a time by concurrent transactions.
  const buyers = await Promise.all(Array.from({ length: 30 }, (_, i) => s.buyer(610_000 + i)));
  const placed = await Promise.all(buyers.map((userId) => s.placeOrder(userId, a.id, 30)));
  expect((await expectTrue())[`${a.id}:30:reserved`]).toBe(30);

  // Ten of them pay (concurrently), ten let the reservation lapse and the expiry returns their keys.
  const answers = await Promise.all(placed.slice(0, 10).map((order) => s.notifier.send(s.notifier.paid(order))));
  expect(answers.every((x) => x.body === "OK")).toBe(true);
  const lapsed = placed.slice(10, 20).map((o) => o.id);
  await s.sql`update orders set reserved_until = now() - interval '1 second' where id in ${s.sql(lapsed)}`;
  expect(await s.shop.orders.expireDue()).toBe(10);
  let truth = await expectTrue();
  expect(truth[`${a.id}:30:sold`]).toBe(10);
  expect(truth[`${a.id}:30:reserved`]).toBe(10);
  expect(truth[`${a.id}:30:available`]).toBe(20);

  // A key issued by hand, an unsold key deleted, a whole product's keys gone with it.
  await s.shop.keys.issue(b.id, 7);
  const [spare] = await s.sql<{ id: string }[]>`
    select id from keys where product_id = ${a.id} and state = 'available' limit 1`;
  await s.shop.keys.remove({ id: Number(spare!.id) });
  const gone = await s.shop.products.create({ name: "Counted C" });
  await s.shop.keys.generate(gone.id, 90, 7);
  await s.sql`delete from products where id = ${gone.id}`;
  truth = await expectTrue();
  expect(truth[`${b.id}:7:sold`]).toBe(1);
  expect(truth[`${gone.id}:90:available`]).toBeUndefined();

  // Compaction folds the deltas to one row per product, duration and state; nothing shown changes.
  const before = await s.sql<{ n: string }[]>`select count(*) as n from key_counts`;
  await Promise.all([s.shop.keys.compactCounts(), s.shop.keys.compactCounts()]);
  const after = await s.sql<{ n: string }[]>`select count(*) as n from key_counts`;
  expect(Number(after[0]!.n)).toBeLessThan(Number(before[0]!.n));
  expect(Number(after[0]!.n)).toBe(Object.keys(truth).length);
  await expectTrue();
});

test("updates that keep a key's state (the auth API's stamps, bans, notes) add no stock rows", async () => {
  const p = await s.product("Counted D", { keys: 3 });
  // Only a sold key can be banned; selling it changes the counts, so compact after the sale.
  const key = await s.shop.keys.issue(p.id, 30);
  await s.shop.keys.compactCounts();
  const rows = async () => Number((await s.sql<{ n: string }[]>`select count(*) as n from key_counts`)[0]!.n);
  const before = await rows();
  await s.sql`update keys set last_auth_at = now(), note = 'stamp' where id = ${key!.id}`;
  await s.shop.keys.setBanned({ key: key!.key }, true);
  expect(await rows()).toBe(before);
  await expectTrue();
});
