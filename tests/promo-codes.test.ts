/**
 * Promo codes through the one checkout service (docs/panel.md#promo-codes): the price after the code, the use held
 * by the order's reservation and counted once paid, every refusal, the limits under real concurrency, and what the
 * money side sees — the AnyPay link and its notification at the discounted amount, the revenue that was charged.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Placement } from "../src/payments/checkout.ts";
import type { PromoInput } from "../src/shop/promos/promos.ts";
import { createPayShop, type PayShop } from "./helpers/payments.ts";

setDefaultTimeout(30_000);

let s: PayShop;
let stalcraft: { id: number; keys: string[] };
let rust: { id: number; keys: string[] };

beforeAll(async () => {
  s = await createPayShop();
  stalcraft = await s.product("Stalcraft", { days: 30, rub: 1999, keys: 40 });
  await s.shop.products.setPrice(stalcraft.id, 7, 899);
  await s.shop.keys.generate(stalcraft.id, 7, 10);
  rust = await s.product("Rust", { days: 30, rub: 999, keys: 5 });
}, 20_000);
afterAll(async () => {
  await s.stop();
}, 20_000);

const percent = (p: number, more: Partial<PromoInput> = {}): PromoInput => ({
  discount: { percent: p, rub: null },
  productId: null,
  days: null,
  maxUses: null,
  maxUsesPerBuyer: null,
  validUntil: null,
  enabled: true,
  ...more,
});
const rubOff = (rub: number, more: Partial<PromoInput> = {}): PromoInput => ({
  ...percent(1, more),
  discount: { percent: null, rub },
});

let nextBuyer = 400_000;
const newBuyer = () => s.buyer(nextBuyer++);

function placed(result: Placement) {
  if (result.kind !== "placed") throw new Error(`expected an order, got ${JSON.stringify(result)}`);
  return result;
}

describe("the price after a code", () => {
  test("a percent code: the order, the AnyPay link and the notification all use the discounted amount", async () => {
    await s.shop.promos.create("spring25", percent(25));
    const buyer = await newBuyer();
    const result = placed(
      await s.payments.place({
        userId: buyer,
        productId: stalcraft.id,
        days: 30,
        seenRub: 1500,
        promoCode: "Spring25",
      }),
    );
    // 1999 less 25 % is 1499.25: the discount is rounded down, the buyer pays whole roubles.
    expect(result.order).toMatchObject({ amountRub: 1500, listRub: 1999, discountRub: 499, promoCode: "SPRING25" });
    const link = result.options.find((o) => o.provider === "anypay");
    expect(link && new URL(link.url).searchParams.get("amount")).toBe("1500");

    // A notification for the list price is not this order's payment.
    const full = await s.notifier.send(s.notifier.paid({ id: result.order.id, amountRub: 1999 }));
    expect(full).toMatchObject({ status: 400, body: "Rejected: amount 1999.00 is not the order's 1500" });
    expect((await s.shop.orders.byId(result.order.id))?.status).toBe("pending");

    expect((await s.notifier.send(s.notifier.paid(result.order))).body).toBe("OK");
    await s.delivered(result.order.id);
    const paid = await s.shop.orders.byId(result.order.id);
    expect(paid).toMatchObject({ status: "delivered", paidBy: "anypay", paidRub: 1500, paidStars: null });
  });

  test("the dashboard and the buyer's statistics count what was charged, not the list price", async () => {
    const buyer = await newBuyer();
    const before = (await s.shop.orders.sales()).today;
    const code = await s.shop.promos.create("HALF", percent(50));
    const result = placed(
      await s.payments.place({ userId: buyer, productId: rust.id, days: 30, seenRub: 500, promoCode: code.code }),
    );
    expect(result.order.amountRub).toBe(500);
    expect((await s.notifier.send(s.notifier.paid(result.order))).body).toBe("OK");
    const after = (await s.shop.orders.sales()).today;
    expect(after.rub - before.rub).toBe(500);
    expect(after.orders - before.orders).toBe(1);
    expect(await s.shop.users.stats(buyer)).toMatchObject({ paidOrders: 1, paidRub: 500 });
    const [listed] = (await s.shop.promos.list()).filter((p) => p.code === "HALF");
    expect(listed).toMatchObject({ used: 1, held: 0, revenueRub: 500, discountRub: 499 });
  });

  test("a fixed discount larger than the price makes the order free: paid at once and delivered, no payment page", async () => {
    await s.shop.promos.create("GIFT5000", rubOff(5000));
    const buyer = await newBuyer();
    const result = await s.payments.place({
      userId: buyer,
      productId: stalcraft.id,
      days: 7,
      seenRub: 0,
      promoCode: "gift5000",
    });
    if (result.kind !== "paid_by_promo") throw new Error(result.kind);
    expect(result.order).toMatchObject({ amountRub: 0, listRub: 899, status: "paid", paidBy: "promo", paidRub: 0 });
    await s.delivered(result.order.id);
    const [doc] = s.tg.callsOf("sendDocument", buyer);
    expect(String(doc?.params.caption)).toMatch(/^Ключ: MPH-.+\r?\nТовар: Stalcraft 7 дней\r?\nСпасибо за покупку!$/);
    const payments = await s.shop.orders.paymentsOf(result.order.id);
    expect(payments).toMatchObject([
      { transactionId: `promo:${result.order.id}`, amount: "0.00", source: "promo", method: "GIFT5000" },
    ]);
    // Nothing was charged: the sale is counted, the revenue is not.
    expect(await s.shop.users.stats(buyer)).toMatchObject({ paidOrders: 1, paidRub: 0 });
  });

  test("a 100 % code pays the order even when no way to pay is configured", async () => {
    await s.shop.promos.create("FREE-100", percent(100));
    await s.shop.settings.update({ anypayMerchantId: null });
    try {
      const buyer = await newBuyer();
      const withoutCode = await s.payments.place({ userId: buyer, productId: rust.id, days: 30, seenRub: 999 });
      expect(withoutCode.kind).toBe("no_way_to_pay");
      const free = await s.payments.place({
        userId: buyer,
        productId: rust.id,
        days: 30,
        seenRub: 0,
        promoCode: "FREE-100",
      });
      expect(free.kind).toBe("paid_by_promo");
    } finally {
      await s.shop.settings.update({ anypayMerchantId: "51234" });
    }
  });

  test("the price the buyer saw is checked after the code: a changed code is reported, not charged", async () => {
    const code = await s.shop.promos.create("TEN", percent(10));
    const buyer = await newBuyer();
    // The buyer saw 10 % off (1800 of 1999); the owner has made it 20 % meanwhile.
    await s.shop.promos.update(code.id, percent(20));
    const result = await s.payments.place({
      userId: buyer,
      productId: stalcraft.id,
      days: 30,
      seenRub: 1800,
      promoCode: "TEN",
    });
    expect(result).toEqual({ kind: "price_changed", rub: 1600 });
    expect(await s.sql`select 1 from orders where user_id = ${buyer}`).toHaveLength(0);
  });

  test("a buyer who confirms with a code after confirming without one gets one order, at the new price", async () => {
    await s.shop.promos.create("SWITCH", percent(10));
    const buyer = await newBuyer();
    const first = placed(await s.payments.place({ userId: buyer, productId: stalcraft.id, days: 30, seenRub: 1999 }));
    const second = placed(
      await s.payments.place({ userId: buyer, productId: stalcraft.id, days: 30, seenRub: 1800, promoCode: "SWITCH" }),
    );
    expect(second.order.id).not.toBe(first.order.id);
    const orders = await s.sql<{ id: string; status: string; amount_rub: number }[]>`
      select id, status, amount_rub from orders where user_id = ${buyer} order by id`;
    expect(orders.map((o) => [o.status, o.amount_rub])).toEqual([
      ["expired", 1999],
      ["pending", 1800],
    ]);
    // The key moved with the buyer: one key held, by the new order.
    const held = await s.sql<{ order_id: string }[]>`
      select order_id from keys where order_id in ${s.sql(orders.map((o) => o.id))} and state = 'reserved'`;
    expect(held.map((k) => Number(k.order_id))).toEqual([second.order.id]);
  });
});

describe("a use is held by the reservation and counted when paid", () => {
  test("the last use is held by an unpaid order, free again when its reservation runs out, gone once paid", async () => {
    await s.shop.promos.create("ONCE", percent(10, { maxUses: 1, maxUsesPerBuyer: null }));
    const [a, b] = [await newBuyer(), await newBuyer()];
    const first = placed(
      await s.payments.place({ userId: a, productId: rust.id, days: 30, seenRub: 900, promoCode: "ONCE" }),
    );
    const refused = await s.payments.place({
      userId: b,
      productId: rust.id,
      days: 30,
      seenRub: 900,
      promoCode: "ONCE",
    });
    expect(refused).toMatchObject({ kind: "promo_refused", verdict: { reason: "used_up", code: "ONCE" } });

    // A's reservation runs out: the use goes back (even before the expiry job has got to the order).
    await s.sql`update orders set reserved_until = now() - interval '1 second' where id = ${first.order.id}`;
    const second = placed(
      await s.payments.place({ userId: b, productId: rust.id, days: 30, seenRub: 900, promoCode: "ONCE" }),
    );
    expect((await s.notifier.send(s.notifier.paid(second.order))).body).toBe("OK");
    // Paid: counted for good, whatever becomes of reservations.
    const c = await newBuyer();
    const late = await s.payments.place({ userId: c, productId: rust.id, days: 30, seenRub: 900, promoCode: "ONCE" });
    expect(late).toMatchObject({ kind: "promo_refused", verdict: { reason: "used_up" } });
    const [listed] = (await s.shop.promos.list()).filter((p) => p.code === "ONCE");
    expect(listed).toMatchObject({ used: 1, held: 0 });
  });

  test("50 buyers applying the last use of a code at the same moment: exactly one order gets it", async () => {
    const product = await s.product("Rush", { days: 30, rub: 1000, keys: 60, build: false });
    const code = await s.shop.promos.create("LAST-ONE", percent(30, { maxUses: 3, maxUsesPerBuyer: null }));
    // Two of the three uses are already taken: one paid, one held.
    for (let i = 0; i < 2; i++) {
      const taken = placed(
        await s.payments.place({
          userId: await newBuyer(),
          productId: product.id,
          days: 30,
          seenRub: 700,
          promoCode: code.code,
        }),
      );
      if (i === 0) expect((await s.notifier.send(s.notifier.paid(taken.order))).body).toBe("OK");
    }
    const buyers = await Promise.all(Array.from({ length: 50 }, () => newBuyer()));
    const results = await Promise.all(
      buyers.map((userId) =>
        s.payments.place({ userId, productId: product.id, days: 30, seenRub: 700, promoCode: "last-one" }),
      ),
    );
    expect(results.filter((r) => r.kind === "placed")).toHaveLength(1);
    const refused = results.filter((r) => r.kind === "promo_refused");
    expect(refused).toHaveLength(49);
    expect(refused.every((r) => r.kind === "promo_refused" && r.verdict.reason === "used_up")).toBe(true);
    const [uses] = await s.sql<{ n: string }[]>`
      select count(*) as n from orders where promo_code_id = ${code.id} and status <> 'expired'`;
    expect(Number(uses!.n)).toBe(3);
    // The refused buyers hold nothing: 3 keys out of stock, the rest still on sale.
    const [keys] = await s.sql<{ taken: string }[]>`
      select count(*) filter (where state <> 'available') as taken from keys where product_id = ${product.id}`;
    expect(Number(keys!.taken)).toBe(3);
  });

  test("one buyer applying a once-per-buyer code to five purchases at the same moment gets it once", async () => {
    const products = await Promise.all(
      ["P1", "P2", "P3", "P4", "P5"].map((name) => s.product(`Per-buyer ${name}`, { rub: 500, keys: 2, build: false })),
    );
    await s.shop.promos.create("MINE", percent(20, { maxUsesPerBuyer: 1 }));
    const buyer = await newBuyer();
    const results = await Promise.all(
      products.map((p) =>
        s.payments.place({ userId: buyer, productId: p.id, days: 30, seenRub: 400, promoCode: "MINE" }),
      ),
    );
    expect(results.filter((r) => r.kind === "placed")).toHaveLength(1);
    expect(results.filter((r) => r.kind === "promo_refused" && r.verdict.reason === "used_by_you")).toHaveLength(4);
    // Another buyer still has their own use.
    const other = await s.payments.place({
      userId: await newBuyer(),
      productId: products[0]!.id,
      days: 30,
      seenRub: 400,
      promoCode: "MINE",
    });
    expect(other.kind).toBe("placed");
  });
});

describe("codes that do not apply leave the purchase as it was", () => {
  test("expired, switched off, another product, another duration, unknown: each says why and nothing is held", async () => {
    const yesterday = new Date(Date.now() - 36 * 3600_000).toISOString().slice(0, 10);
    await s.shop.promos.create("OLD", percent(10, { validUntil: yesterday }));
    const off = await s.shop.promos.create("OFF", percent(10));
    await s.shop.promos.setEnabled(off.id, false);
    await s.shop.promos.create("RUST-ONLY", percent(10, { productId: rust.id }));
    await s.shop.promos.create("WEEK", percent(10, { productId: stalcraft.id, days: [7] }));
    const buyer = await newBuyer();
    const tryCode = (promoCode: string) =>
      s.payments.place({ userId: buyer, productId: stalcraft.id, days: 30, seenRub: 1799, promoCode });
    expect(await tryCode("old")).toMatchObject({ kind: "promo_refused", verdict: { reason: "expired" } });
    expect(await tryCode("OFF")).toMatchObject({ kind: "promo_refused", verdict: { reason: "disabled" } });
    expect(await tryCode("rust-only")).toMatchObject({
      kind: "promo_refused",
      verdict: { reason: "other_product", productName: "Rust" },
    });
    expect(await tryCode("WEEK")).toMatchObject({
      kind: "promo_refused",
      verdict: { reason: "other_duration", days: [7] },
    });
    expect(await tryCode("NOPE-NOPE")).toMatchObject({ kind: "promo_refused", verdict: { reason: "unknown" } });
    expect(await s.sql`select 1 from orders where user_id = ${buyer}`).toHaveLength(0);
    // …and the same purchase without a code goes through at its price.
    const plain = placed(await s.payments.place({ userId: buyer, productId: stalcraft.id, days: 30, seenRub: 1999 }));
    expect(plain.order).toMatchObject({ amountRub: 1999, promoCode: null, discountRub: 0 });
  });

  test("a code valid until today works all of today (a Moscow day)", async () => {
    const today = new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Moscow" }).format(new Date());
    await s.shop.promos.create("TODAY", percent(10, { validUntil: today }));
    const quote = await s.payments.quotePromo({
      userId: await newBuyer(),
      productId: rust.id,
      days: 30,
      seenRub: 999,
      code: "today",
    });
    expect(quote).toMatchObject({ kind: "ok", price: { rub: 900 }, promo: { code: "TODAY" } });
  });

  test("a buyer who keeps typing unknown codes is stopped for a while, even for a real one", async () => {
    const buyer = await newBuyer();
    for (let i = 0; i < 5; i++) {
      const q = await s.payments.quotePromo({
        userId: buyer,
        productId: rust.id,
        days: 30,
        seenRub: 999,
        code: `GUESS${i}`,
      });
      expect(q).toMatchObject({ kind: "promo_refused", verdict: { reason: "unknown" } });
    }
    const real = await s.payments.quotePromo({
      userId: buyer,
      productId: rust.id,
      days: 30,
      seenRub: 999,
      code: "HALF",
    });
    expect(real.kind).toBe("promo_guessing");
    // Confirming with a code is a guess like any other.
    const confirm = await s.payments.place({
      userId: buyer,
      productId: rust.id,
      days: 30,
      seenRub: 500,
      promoCode: "HALF",
    });
    expect(confirm.kind).toBe("promo_guessing");
    // Someone else is not affected.
    const other = await s.payments.quotePromo({
      userId: await newBuyer(),
      productId: rust.id,
      days: 30,
      seenRub: 999,
      code: "HALF",
    });
    expect(other.kind).toBe("ok");
  });
});

describe("the database keeps the money rules", () => {
  test("no order can be free or discounted without a code, and no code can be stored in lower case", async () => {
    const buyer = await newBuyer();
    const insert = (amount: number, discount: number) => s.sql`
      insert into orders (user_id, product_id, days, amount_rub, discount_rub, reserved_until)
      values (${buyer}, ${rust.id}, 30, ${amount}, ${discount}, now())`;
    await expect(insert(0, 0)).rejects.toThrow(/orders_discount_by_promo/);
    await expect(insert(500, 499)).rejects.toThrow(/orders_discount_by_promo/);
    await expect(insert(-1, 0)).rejects.toThrow(/orders_amount_rub_check/);
    await expect(s.sql`insert into promo_codes (code, percent) values ('lower', 10)`).rejects.toThrow(/code_check/);
    await expect(s.sql`insert into promo_codes (code, percent, rub) values ('BOTH', 10, 100)`).rejects.toThrow(
      /promo_codes_check/,
    );
    await expect(s.shop.promos.create("spring25", percent(5))).rejects.toThrow("Промокод SPRING25 уже есть");
  });
});
