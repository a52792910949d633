import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, spyOn, test } from "bun:test";
import { createHash } from "node:crypto";
import { setLogLevel } from "../src/lib/log.ts";
import { ADMIN_ID, BUILD_ZIP, createPayShop, type PayShop, SECRET_KEY, sideEffects } from "./helpers/payments.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

let s: PayShop;
let stalcraft: { id: number; keys: string[] };

beforeAll(async () => {
  s = await createPayShop();
  stalcraft = await s.product("Stalcraft", { days: 30, rub: 1999, keys: 20 });
}, 20_000);
afterAll(async () => {
  await s.stop();
}, 20_000);

/**
 * The caption as the buyer sees it. A multipart upload carries "\n" as "\r\n" (form encoding), and Telegram drops
 * every "\r" from texts it receives (tdlib's clean_input_string), so "\r" is dropped here too.
 */
const seen = (text: unknown) => String(text).replaceAll("\r", "");
const CAPTION = /^Ключ: (MPH-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5})\nТовар: Stalcraft 30 дней\nСпасибо за покупку!$/;

async function auth(product: string, key: string, uuid: string) {
  const res = await s.request(`/api/${encodeURIComponent(product)}/auth`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key, uuid }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("a paid notification", () => {
  test("delivers the zip once with the exact caption; the key is sold to the buyer and answers the auth API", async () => {
    const buyer = await s.buyer(100_001, "first_buyer");
    const order = await s.placeOrder(buyer, stalcraft.id);
    const answer = await s.notifier.send(s.notifier.paid(order));
    expect(answer).toEqual({ status: 200, body: "OK", contentType: "text/plain; charset=utf-8" });

    await s.delivered(order.id);
    const docs = s.tg.callsOf("sendDocument", buyer);
    expect(docs).toHaveLength(1);
    const caption = seen(docs[0]!.params.caption);
    const key = CAPTION.exec(caption)?.[1];
    expect(key).toBeDefined();
    expect(docs[0]!.files.document?.name).toBe("loader.zip");
    expect(docs[0]!.files.document?.sha256).toBe(createHash("sha256").update(BUILD_ZIP).digest("hex"));

    const [row] = await s.sql`select state, order_id, buyer_id, sold_at from keys where key = ${key!}`;
    expect(row).toMatchObject({ state: "sold", order_id: String(order.id), buyer_id: String(buyer) });
    expect(row!.sold_at).toBeInstanceOf(Date);
    expect((await s.shop.orders.byId(order.id))?.status).toBe("delivered");

    const r = await auth("Stalcraft", key!, "PC-FIRST");
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ success: true, message: "OK", days: 29, hours: 23 });

    const events = await s.sql<{ kind: string }[]>`select kind from user_events where user_id = ${buyer} order by id`;
    expect(events.map((e) => e.kind)).toEqual(["order_placed", "order_paid", "order_delivered"]);
    const [payment] =
      await s.sql`select amount, currency, method, outcome, test from payments where order_id = ${order.id}`;
    expect(payment).toMatchObject({
      amount: "1999.00",
      currency: "RUB",
      method: "card",
      outcome: "applied",
      test: false,
    });
  });

  test("the next sale of the same build sends Telegram's file_id instead of uploading the zip again", async () => {
    const buyer = await s.buyer(100_002);
    const order = await s.placeOrder(buyer, stalcraft.id);
    expect((await s.notifier.send(s.notifier.paid(order), { method: "GET" })).body).toBe("OK");
    await s.delivered(order.id);
    const product = await s.shop.products.byId(stalcraft.id);
    expect(product?.build?.fileId).toStartWith("doc_");
    const [doc] = s.tg.callsOf("sendDocument", buyer);
    expect(doc!.params.document).toBe(product!.build!.fileId!);
    expect(Object.keys(doc!.files)).toEqual([]);
    expect(seen(doc!.params.caption)).toMatch(CAPTION);
  });

  test("the same notification 5 times in a row and 5 copies at once: one delivery, every answer OK", async () => {
    const buyer = await s.buyer(100_003);
    const order = await s.placeOrder(buyer, stalcraft.id);
    const fields = s.notifier.paid(order);
    for (let i = 0; i < 5; i++) {
      expect(await s.notifier.send(fields, { method: i % 2 ? "GET" : "POST" })).toMatchObject({
        status: 200,
        body: "OK",
      });
    }
    const other = await s.buyer(100_004);
    const second = await s.placeOrder(other, stalcraft.id);
    const copy = s.notifier.paid(second);
    const answers = await Promise.all(Array.from({ length: 5 }, () => s.notifier.send(copy)));
    expect(answers.map((a) => `${a.status} ${a.body}`)).toEqual(Array(5).fill("200 OK"));

    await s.delivered(order.id);
    await s.delivered(second.id);
    await Bun.sleep(300);
    expect(s.tg.callsOf("sendDocument", buyer)).toHaveLength(1);
    expect(s.tg.callsOf("sendDocument", other)).toHaveLength(1);
    const [counts] = await s.sql`
      select (select count(*) from payments where order_id in (${order.id}, ${second.id}))::int as payments,
             (select count(*) from keys where buyer_id in (${buyer}, ${other}))::int as keys`;
    expect(counts).toEqual({ payments: 2, keys: 2 });
  });

  test("a second, different payment for a paid order is recorded, answered OK, and the admins are told", async () => {
    const errors = spyOn(console, "error").mockImplementation(() => {});
    const buyer = await s.buyer(100_005);
    const order = await s.placeOrder(buyer, stalcraft.id);
    expect((await s.notifier.send(s.notifier.paid(order))).body).toBe("OK");
    await s.delivered(order.id);
    const again = s.notifier.paid(order);
    expect(await s.notifier.send(again)).toMatchObject({ status: 200, body: "OK" });
    const alert = await s.tg.waitFor((calls) =>
      calls.find(
        (c) =>
          c.method === "sendMessage" &&
          Number(c.params.chat_id) === ADMIN_ID &&
          String(c.params.text).includes(`заказа №${order.id}`),
      ),
    );
    expect(String(alert.params.text)).toContain(`Повторная оплата заказа №${order.id}`);
    expect(String(alert.params.text)).toContain(again.transaction_id!);
    const ledger = await s.shop.orders.paymentsOf(order.id);
    expect(ledger.map((p) => [p.outcome, p.amount, p.source])).toEqual([
      ["applied", "1999.00", "anypay"],
      ["duplicate", "1999.00", "anypay"],
    ]);
    expect(ledger[1]!.transactionId).toBe(again.transaction_id!);
    expect(s.tg.callsOf("sendDocument", buyer)).toHaveLength(1);
    expect(
      errors.mock.calls.some((c) => String(c[0]).includes("second payment for an order that was already paid")),
    ).toBe(true);
    errors.mockRestore();
  });
});

describe("rejected notifications change nothing and leave a log line", () => {
  let logged: string[] = [];
  let spy: ReturnType<typeof spyOn>;
  let order: Awaited<ReturnType<PayShop["placeOrder"]>>;

  beforeAll(async () => {
    order = await s.placeOrder(await s.buyer(100_100), stalcraft.id);
  });
  afterEach(() => {
    spy?.mockRestore();
    setLogLevel("error");
  });

  async function expectRejected(
    send: () => Promise<{ status: number; body: string }>,
    status: number,
    logPart: string,
  ): Promise<void> {
    logged = [];
    setLogLevel("warn");
    spy = spyOn(console, "error").mockImplementation((line: unknown) => {
      logged.push(String(line));
    });
    const before = await sideEffects(s);
    const answer = await send();
    await Bun.sleep(50);
    expect(answer.status).toBe(status);
    expect(answer.body).toStartWith("Rejected: ");
    expect(await sideEffects(s)).toEqual(before);
    const line = logged.find((l) => l.includes("anypay notification rejected"));
    expect(line).toBeDefined();
    expect(line).toContain(logPart);
  }

  test("a wrong signature", async () => {
    const fields = s.notifier.paid(order);
    fields.sign = s.notifier.sign(fields, `${SECRET_KEY}-wrong`);
    await expectRejected(() => s.notifier.send(fields), 403, "signature does not match");
  });

  test("another merchant id, even signed with our secret", async () => {
    await expectRejected(
      () => s.notifier.send(s.notifier.paid(order, { merchant_id: "99999" })),
      403,
      "merchant_id is not this shop's",
    );
  });

  test("a wrong amount", async () => {
    await expectRejected(() => s.notifier.send(s.notifier.paid(order, { amount: "1.00" })), 400, "amount 1.00");
  });

  test("a wrong currency", async () => {
    await expectRejected(() => s.notifier.send(s.notifier.paid(order, { currency: "USD" })), 400, "currency USD");
  });

  test("a signed status other than paid is answered OK (or AnyPay retries it forever) and changes nothing", async () => {
    for (const status of ["canceled", "refund", "waiting"]) {
      logged = [];
      setLogLevel("warn");
      spy = spyOn(console, "error").mockImplementation((line: unknown) => {
        logged.push(String(line));
      });
      const before = await sideEffects(s);
      const answer = await s.notifier.send(s.notifier.paid(order, { status }));
      await Bun.sleep(50);
      expect(answer).toMatchObject({ status: 200, body: "OK" });
      expect(await sideEffects(s)).toEqual(before);
      const lines = logged.filter((l) => l.includes("anypay notification"));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`anypay notification ignored: status is \\"${status}\\"`);
      spy.mockRestore();
    }
    expect((await s.shop.orders.byId(order.id))?.status).toBe("pending");
    // Unsigned, it is still refused like any forgery.
    const forged = s.notifier.paid(order, { status: "refund" });
    forged.sign = s.notifier.sign(forged, `${SECRET_KEY}-wrong`);
    await expectRejected(() => s.notifier.send(forged), 403, "signature does not match");
  });

  test("test=1 while test payments are off", async () => {
    await expectRejected(() => s.notifier.send(s.notifier.paid(order, { test: "1" })), 403, "test payments are off");
  });

  test("test=1 with test payments on, for the order of a buyer who is not an admin", async () => {
    // AnyPay's project in test mode would let any buyer "pay" without money: the switch is for admins only.
    await s.shop.settings.update({ testPayments: true });
    try {
      await expectRejected(
        () => s.notifier.send(s.notifier.paid(order, { test: "1" })),
        403,
        "test payment for an order of a buyer who is not an admin",
      );
    } finally {
      await s.shop.settings.update({ testPayments: false });
    }
  });

  test("a source address outside the allow-list, and a direct call that skips the proxy", async () => {
    await expectRejected(
      () => s.notifier.send(s.notifier.paid(order), { from: "203.0.113.7" }),
      403,
      '"ip":"203.0.113.7"',
    );
    await expectRejected(() => s.notifier.send(s.notifier.paid(order), { from: null }), 403, '"ip":"127.0.0.1"');
  });

  test("an unknown pay_id", async () => {
    await expectRejected(
      () => s.notifier.send(s.notifier.paid({ id: 987_654_321, amountRub: 1999 })),
      404,
      "no order with this pay_id",
    );
  });

  test("garbage fields", async () => {
    const { sign: _, ...unsigned } = s.notifier.paid(order);
    await expectRejected(() => s.notifier.send(unsigned), 400, "sign is missing");
    await expectRejected(() => s.notifier.send({}), 400, "merchant_id is missing");
    await expectRejected(() => s.notifier.send(s.notifier.paid(order, { amount: "19,99" })), 400, "amount must be");
    await expectRejected(() => s.notifier.send(s.notifier.paid(order, { pay_id: "1 or 1=1" })), 400, "pay_id must be");
    await expectRejected(() => s.notifier.send({ ...s.notifier.paid(order), sign: "zz" }), 400, "sign must be");
    await expectRejected(() => s.notifier.send(s.notifier.paid(order, { test: "yes" })), 400, "test must be 0 or 1");
    await expectRejected(
      () =>
        s.notifier.sendRaw(
          `${new URLSearchParams(s.notifier.paid(order))}&pay_id=2`,
          "application/x-www-form-urlencoded",
        ),
      400,
      "malformed notification",
    );
    await expectRejected(() => s.notifier.sendRaw("{not json", "application/json"), 400, "the body is not a form");
  });

  test("the order is still payable after all of that", async () => {
    expect((await s.notifier.send(s.notifier.paid(order))).body).toBe("OK");
    await s.delivered(order.id);
  });
});

test("a refusal from AnyPay's address reaches the owner: one admin alert per transaction and reason, all retries counted", async () => {
  const order = await s.placeOrder(await s.buyer(100_300), stalcraft.id);
  const alertsBefore = s.tg.callsOf("sendMessage", ADMIN_ID).length;
  // A wrong secret key in the panel: AnyPay's real notification does not verify, and AnyPay retries it.
  const fields = s.notifier.paid(order);
  fields.sign = s.notifier.sign(fields, "the-secret-AnyPay-really-uses");
  for (let i = 0; i < 3; i++) expect((await s.notifier.send(fields)).status).toBe(403);
  await s.payments.idle();
  const alerts = s.tg.callsOf("sendMessage", ADMIN_ID).slice(alertsBefore);
  expect(alerts).toHaveLength(1);
  expect(String(alerts[0]!.params.text)).toStartWith(
    "⚠️ Магазин отклонил уведомление AnyPay об оплате: подпись не совпадает — проверьте секретный ключ AnyPay",
  );
  expect(String(alerts[0]!.params.text)).toContain(`Заказ (pay_id): ${order.id}, транзакция ${fields.transaction_id}`);
  const [refused] = await s.shop.refusedNotifications.recent(1);
  expect(refused).toMatchObject({
    tries: 3,
    payId: String(order.id),
    transactionId: fields.transaction_id,
    amount: "1999.00",
    ip: "185.162.128.38",
  });
  expect(refused!.reason).toStartWith("подпись не совпадает");
  // A stranger's forgery (not from AnyPay's address) is refused without a word to the owner.
  await s.notifier.send(fields, { from: "203.0.113.9" });
  await s.payments.idle();
  expect(s.tg.callsOf("sendMessage", ADMIN_ID).slice(alertsBefore)).toHaveLength(1);
  expect((await s.shop.refusedNotifications.recent(1))[0]!.tries).toBe(3);
  // Once the key is right, the same payment goes through.
  expect((await s.notifier.send(s.notifier.paid(order))).body).toBe("OK");
  await s.delivered(order.id);
});

describe("test payments", () => {
  test("are accepted from AnyPay with test=1 once the panel's switch is on, and mark the order as a test", async () => {
    await s.shop.settings.update({ testPayments: true });
    try {
      const order = await s.placeOrder(ADMIN_ID, stalcraft.id);
      expect((await s.notifier.send(s.notifier.paid(order, { test: "1" }))).body).toBe("OK");
      await s.delivered(order.id);
      expect((await s.shop.orders.byId(order.id))?.test).toBe(true);
    } finally {
      await s.shop.settings.update({ testPayments: false });
    }
  });

  test("the admin's test button pays through the same path, only for an admin and only with the switch on", async () => {
    const order = await s.placeOrder(ADMIN_ID, stalcraft.id);
    const sentBefore = s.tg.callsOf("sendDocument", ADMIN_ID).length;
    expect(await s.payments.payTest(order.id, ADMIN_ID)).toEqual({
      ok: false,
      reason: "Тестовые платежи выключены в панели.",
    });
    await s.shop.settings.update({ testPayments: true });
    try {
      const buyer = await s.buyer(100_201);
      const own = await s.placeOrder(buyer, stalcraft.id);
      expect(await s.payments.payTest(own.id, buyer)).toEqual({
        ok: false,
        reason: "Тестовая оплата доступна только администраторам.",
      });
      expect((await s.shop.orders.byId(own.id))?.status).toBe("pending");

      expect(await s.payments.payTest(order.id, ADMIN_ID)).toEqual({ ok: true });
      expect(await s.payments.payTest(order.id, ADMIN_ID)).toEqual({ ok: true });
      await s.delivered(order.id);
      const paid = await s.shop.orders.byId(order.id);
      expect(paid).toMatchObject({ status: "delivered", test: true, transactionId: `test:${order.id}` });
      expect(s.tg.callsOf("sendDocument", ADMIN_ID)).toHaveLength(sentBefore + 1);
      expect(seen(s.tg.callsOf("sendDocument", ADMIN_ID)[sentBefore]!.params.caption)).toMatch(CAPTION);
    } finally {
      await s.shop.settings.update({ testPayments: false });
    }
  });
});

test("form fields named like built-ins (__proto__, toString) are fields like any other: refused as malformed, no crash", async () => {
  const order = await s.placeOrder(await s.buyer(100_400), stalcraft.id);
  const body = `${new URLSearchParams(s.notifier.paid(order))}&__proto__=x&toString=y&toString=z`;
  const answer = await s.notifier.sendRaw(body, "application/x-www-form-urlencoded");
  // Extra fields are ignored; the built-in names neither crash the check nor become lists of the real fields.
  expect(answer).toEqual({ status: 200, body: "OK" });
  await s.delivered(order.id);
});
