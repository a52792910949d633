/**
 * The panel's «Промокоды» tab through the real app (app.handle) and database: creating a code (and the refusals of a
 * bad form), editing it, switching it off and on, the uses and revenue per code, and how Заказы shows an order's
 * code and who paid it.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { PanelClient } from "./helpers/panel-client.ts";
import { createPayShop, type PayShop } from "./helpers/payments.ts";

setDefaultTimeout(30_000);

let s: PayShop;
let c: PanelClient;
let stalcraft: { id: number; keys: string[] };
let nextBuyer = 520_000;
const XSS = "<img src=x onerror=alert(1)> & <b>";

beforeAll(async () => {
  s = await createPayShop();
  stalcraft = await s.product("Stalcraft", { days: 30, rub: 1999, keys: 20 });
  await s.shop.products.setPrice(stalcraft.id, 7, 899);
  await s.shop.keys.generate(stalcraft.id, 7, 5);
  const { password } = await s.shop.accounts.reset("admin");
  c = new PanelClient(s);
  await c.login("admin", password);
  await c.page("/promos");
}, 20_000);
afterAll(async () => {
  await s.stop();
}, 20_000);

const form = (fields: Record<string, string | string[]>) => {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) if (!Array.isArray(v)) out[k] = v;
  return out;
};

/** Posts the code form with repeated `days` checkboxes, as a browser does. */
async function postPromo(path: string, fields: Record<string, string>, days: string[] = []) {
  const body = new URLSearchParams(fields);
  for (const d of days) body.append("days", d);
  body.append("_csrf", c.csrf);
  return s.request(path, {
    method: "POST",
    body,
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      cookie: [...c.cookies].map(([k, v]) => `${k}=${v}`).join("; "),
    },
  });
}

const text = (html: string) =>
  html
    .replace(/<[^>]+>/g, " ")
    .replace(/&nbsp;|\u202f|\u00a0/g, " ")
    .replace(/\s+/g, " ");

describe("«Промокоды»", () => {
  test("the tab is in the panel's navigation", async () => {
    const { status, html } = await c.page("/");
    expect(status).toBe(200);
    expect(html).toContain(`href="${c.base}/promos"`);
    expect(html).toContain("Промокоды");
  });

  test("a bad form comes back with what was typed and what is wrong, and creates nothing", async () => {
    const res = await postPromo(
      "/promos",
      form({
        code: "no spaces!",
        kind: "percent",
        amount: "150",
        productId: "",
        maxUses: "0",
        validUntil: "2030-02-30",
      }),
      ["8"],
    );
    expect(res.status).toBe(422);
    const html = await res.text();
    expect(html).toContain("Код — от 3 до 32 символов");
    expect(html).toContain("Процент — целое число от 1 до 100");
    expect(html).toContain("Сроки — из 1, 7, 14, 30, 90 дней");
    expect(html).toContain("Целое число от 1 до 1 000 000, или пусто");
    expect(html).toContain("Дата в виде ГГГГ-ММ-ДД");
    expect(html).toContain('value="no spaces!"');
    expect(await s.sql`select 1 from promo_codes`).toHaveLength(0);
  });

  test("a new code is created canonical and listed with its terms; the same code again is refused", async () => {
    const res = await postPromo(
      "/promos",
      form({
        code: "spring25",
        kind: "percent",
        amount: "25",
        productId: String(stalcraft.id),
        maxUses: "10",
        maxUsesPerBuyer: "1",
        validUntil: "2030-12-31",
        enabled: "on",
      }),
      ["7", "30"],
    );
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe(`${c.base}/promos?created=SPRING25`);
    const { html } = await c.page("/promos?created=SPRING25");
    const seen = text(html);
    expect(seen).toContain("Промокод SPRING25 создан.");
    expect(seen).toContain("SPRING25 −25% Stalcraft · 7 и 30 дней 0 из 10");
    expect(seen).toContain("31.12.2030");
    expect(seen).toContain("действует");

    const again = await postPromo("/promos", form({ code: "Spring25", kind: "rub", amount: "100", enabled: "on" }));
    expect(again.status).toBe(409);
    expect(await again.text()).toContain("Промокод SPRING25 уже есть");
  });

  test("editing a code changes the terms for the next buyer; an order already placed keeps its price", async () => {
    const promo = (await s.shop.promos.byCode("SPRING25"))!;
    const buyer = await s.buyer(nextBuyer++);
    const placed = await s.payments.place({
      userId: buyer,
      productId: stalcraft.id,
      days: 30,
      seenRub: 1500,
      promoCode: "SPRING25",
    });
    expect(placed.kind).toBe("placed");
    const res = await postPromo(
      `/promos/${promo.id}`,
      form({ kind: "rub", amount: "300", productId: "", maxUses: "", maxUsesPerBuyer: "2", validUntil: "" }),
    );
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe(`${c.base}/promos/${promo.id}?saved=1`);
    const page = text((await c.page(`/promos/${promo.id}?saved=1`)).html);
    expect(page).toContain("Промокод сохранён.");
    expect(page).toContain("−300 ₽ · Все товары");
    expect(page).toContain("ещё 1 ждут оплаты");
    if (placed.kind === "placed") expect((await s.shop.orders.byId(placed.order.id))?.amountRub).toBe(1500);
    const next = await s.payments.quotePromo({
      userId: await s.buyer(nextBuyer++),
      productId: stalcraft.id,
      days: 7,
      seenRub: 899,
      code: "spring25",
    });
    expect(next).toMatchObject({ kind: "ok", price: { rub: 599 } });
    // An edit with a bad field is refused next to it, and nothing changes.
    const bad = await postPromo(`/promos/${promo.id}`, form({ kind: "percent", amount: "0" }));
    expect(bad.status).toBe(422);
    expect(await bad.text()).toContain("Процент — целое число от 1 до 100");
    expect((await s.shop.promos.byId(promo.id))?.discount).toEqual({ percent: null, rub: 300 });
  });

  test("switching a code off makes the bot refuse it; on again, it applies", async () => {
    const promo = (await s.shop.promos.byCode("SPRING25"))!;
    const off = await c.post(`/promos/${promo.id}/enabled?back=page`, { enabled: "off" });
    expect(off.status).toBe(303);
    expect(off.headers.get("location")).toBe(`${c.base}/promos/${promo.id}?switched=off`);
    expect(text((await c.page(`/promos/${promo.id}?switched=off`)).html)).toContain("Промокод выключен.");
    expect(text((await c.page("/promos")).html)).toContain("выключен");
    const buyer = await s.buyer(nextBuyer++);
    const refused = await s.payments.quotePromo({
      userId: buyer,
      productId: stalcraft.id,
      days: 30,
      seenRub: 1999,
      code: "SPRING25",
    });
    expect(refused).toMatchObject({ kind: "promo_refused", verdict: { reason: "disabled" } });
    expect((await c.post(`/promos/${promo.id}/enabled?back=list`, { enabled: "on" })).headers.get("location")).toBe(
      `${c.base}/promos`,
    );
    const applied = await s.payments.quotePromo({
      userId: buyer,
      productId: stalcraft.id,
      days: 30,
      seenRub: 1999,
      code: "SPRING25",
    });
    expect(applied.kind).toBe("ok");
    // A hand-made post that names no position changes nothing.
    expect((await c.post(`/promos/${promo.id}/enabled`, { enabled: "maybe" })).status).toBe(422);
    // Without the session's token nothing is switched.
    expect((await c.post(`/promos/${promo.id}/enabled`, { enabled: "off" }, { csrf: false })).status).toBe(403);
    expect((await s.shop.promos.byId(promo.id))?.enabled).toBe(true);
  });

  test("uses and revenue per code count paid orders at what they paid; Заказы and the order page show the code and who paid", async () => {
    await s.shop.promos.create("HALF", {
      discount: { percent: 50, rub: null },
      productId: null,
      days: null,
      maxUses: null,
      maxUsesPerBuyer: null,
      validUntil: null,
      enabled: true,
    });
    const buyer = await s.buyer(nextBuyer++);
    const placed = await s.payments.place({
      userId: buyer,
      productId: stalcraft.id,
      days: 30,
      seenRub: 1000,
      promoCode: "half",
    });
    if (placed.kind !== "placed") throw new Error(placed.kind);
    expect((await s.notifier.send(s.notifier.paid(placed.order))).body).toBe("OK");
    const list = text((await c.page("/promos")).html);
    expect(list).toContain("HALF −50% Все товары 1 1 000 ₽");

    const orders = text((await c.page("/orders")).html);
    expect(orders).toContain("1 000 ₽ HALF −999 ₽");
    expect(orders).toContain("AnyPay");
    const order = text((await c.page(`/orders/${placed.order.id}`)).html);
    expect(order).toContain("Промокод HALF скидка 999 ₽ от цены 1 999 ₽");
    expect(order).toContain("Чем оплачен AnyPay: 1 000 ₽");
  });

  test("an order a code paid in full is shown as paid by promo code, with nothing charged", async () => {
    await s.shop.promos.create("FREE7", {
      discount: { percent: 100, rub: null },
      productId: stalcraft.id,
      days: [7],
      maxUses: null,
      maxUsesPerBuyer: null,
      validUntil: null,
      enabled: true,
    });
    const buyer = await s.buyer(nextBuyer++);
    const free = await s.payments.place({
      userId: buyer,
      productId: stalcraft.id,
      days: 7,
      seenRub: 0,
      promoCode: "FREE7",
    });
    if (free.kind !== "paid_by_promo") throw new Error(free.kind);
    const order = text((await c.page(`/orders/${free.order.id}`)).html);
    expect(order).toContain("Чем оплачен промокод (бесплатно): 0 ₽");
    expect(order).toContain(`promo:${free.order.id}`);
    expect(order).toContain("промокод FREE7");
    expect(text((await c.page("/orders")).html)).toContain("промокод (бесплатно)");
  });

  test("a product's name is shown as text, not markup", async () => {
    const product = await s.product(XSS, { rub: 100, keys: 1, build: false });
    await s.shop.promos.create("XSS-CHECK", {
      discount: { percent: 10, rub: null },
      productId: product.id,
      days: null,
      maxUses: null,
      maxUsesPerBuyer: null,
      validUntil: null,
      enabled: true,
    });
    const { html } = await c.page("/promos");
    expect(html).not.toContain(XSS);
    expect(html).toContain("&lt;img src=x onerror=alert(1)&gt; &amp; &lt;b&gt;");
  });

  test("a code that does not exist is a 404 page, not an error", async () => {
    expect((await c.page("/promos/999999")).status).toBe(404);
    expect((await c.page("/promos/abc")).status).toBe(404);
  });
});
