/**
 * A Telegram Stars payment that arrives while the shop's database is away, longer than the bot's quick retries
 * (7.5 s): the real bot long-polls a fake Bot API, the shop's pool reaches PostgreSQL through a proxy the test cuts.
 * The poller keeps the update (its offset stays) and handles it again until the database is back: the order is paid
 * once and the key delivered once, instead of the payment being left to a log line.
 *
 * In webhook mode the shop answers Telegram 503 instead, so that Telegram sends the payment again.
 *
 * The poller's lock connects directly (the configuration's URL), so it is held throughout and this very poller
 * carries the update over the outage: a lost lock would restart the poller from its saved position, which hides
 * the outcome of the update in hand.
 */
import { afterEach, expect, setDefaultTimeout, test } from "bun:test";
import postgres from "postgres";
import { webhookSecret } from "../src/bot/runtime.ts";
import type { Config } from "../src/config.ts";
import type { RunningShop } from "../src/server.ts";
import { buttonsOf, buyer } from "./helpers/bot.ts";
import { type FakeTelegram, type RecordedCall, TEST_TOKEN, type TgUser } from "./helpers/fake-telegram.ts";
import { eventually } from "./helpers/licence.ts";
import { type ProductionShop, startProductionShop } from "./helpers/running-shop.ts";
import { TcpProxy } from "./helpers/tcp-proxy.ts";

// About 15 s each when all goes well (the poller starts 5 s in, the outage lasts 10 s); hang protection only.
setDefaultTimeout(45_000);

let tg: FakeTelegram;
let running: RunningShop;
let production: ProductionShop;
let proxy: TcpProxy;
let away = false;

/** The shop as in production, its pool behind `proxy`; one product at 150 ⭐ for 30 days, Stars on. */
async function startShop(overrides: Partial<Config> = {}): Promise<number> {
  production = await startProductionShop(overrides, {
    pool: (databaseUrl) => {
      const url = new URL(databaseUrl);
      proxy = new TcpProxy(Number(url.port || 5432)).start();
      url.port = String(proxy.port);
      // The shop's pool settings (connectDatabase) but for postgres.js's reconnect backoff, which grows to 10-20 s
      // after the failed connects of an outage, and the connect timeout (a connect made just as the proxy comes
      // back has been seen to hang until it): the shop would only take that much longer to come back.
      return postgres(url.toString(), {
        max: 4,
        onnotice: () => {},
        idle_timeout: 60,
        connect_timeout: 2,
        backoff: () => 0.2,
      });
    },
  });
  ({ tg, running } = production);
  const { shop } = running;
  const product = await shop.products.create({ name: "Stalcraft", description: "" });
  await shop.products.setPrice(product.id, 30, 1999);
  await shop.products.setStarsPrice(product.id, 30, 150);
  await shop.keys.generate(product.id, 30, 3);
  await shop.settings.update({ botToken: TEST_TOKEN, botEnabled: true, starsEnabled: true });
  return product.id;
}

function cut(): void {
  proxy.cut();
  away = true;
}

function restore(): void {
  proxy.start();
  away = false;
}

afterEach(async () => {
  // Back for the shop's own shutdown (jobs and the poller flush their state).
  if (away) restore();
  await production.stop();
  proxy.cut();
});

const keysSentTo = (user: TgUser) =>
  tg.calls.filter(
    (c) =>
      (c.method === "sendMessage" || c.method === "sendDocument") &&
      Number(c.params.chat_id) === user.id &&
      /^Ключ: MPH-/.test(String(c.params.text ?? c.params.caption ?? "")),
  );

test("paid while the database is away longer than the quick retries: settled once it is back, the key sent once", async () => {
  await startShop();
  const alice = buyer(630_000_001, "Alice");
  const catalogue = await production.say(alice, "/start");
  const card = await production.press(alice, "Stalcraft", catalogue);
  const confirm = await production.press(alice, "30 дней • 1999₽", card);
  const payment = await production.press(alice, "Подтвердить", confirm);
  const star = buttonsOf(payment).find((b) => b.text.includes("⭐"))!;
  const from = tg.calls.length;
  tg.pressButton(TEST_TOKEN, alice, star.callback_data!, { message_id: 1 });
  const invoice: RecordedCall = await tg.waitFor((calls) => calls.slice(from).find((c) => c.method === "sendInvoice"));
  const details = { payload: String(invoice.params.payload), total_amount: 150 };
  expect((await tg.preCheckout(TEST_TOKEN, alice, details)).params.ok).toBe(true);

  // Telegram has taken the Stars; the shop's database goes away for longer than the bot's quick retries.
  cut();
  const { chargeId } = tg.successfulPayment(TEST_TOKEN, alice, details);
  await Bun.sleep(10_000);
  expect(keysSentTo(alice)).toHaveLength(0);
  // The poller was not stopped or restarted by the outage: the update is carried over by the same one.
  expect(running.bot.status().state).toBe("polling");
  restore();

  await tg.waitFor(() => keysSentTo(alice).length > 0, 15_000);
  const sql = running.shop.deps.sql;
  // The key's message is recorded by the fake Bot API a moment before the shop marks the order delivered.
  const orderRow = async () =>
    (
      await sql<{ status: string; transaction_id: string | null }[]>`
        select status, transaction_id from orders where id = ${details.payload}`
    )[0];
  await eventually(async () => (await orderRow())?.status === "delivered", 5_000);
  expect(await orderRow()).toEqual({ status: "delivered", transaction_id: chargeId });
  const ledger = await sql`select transaction_id, outcome from payments where order_id = ${details.payload}`;
  expect([...ledger]).toEqual([{ transaction_id: chargeId, outcome: "applied" }]);

  // Nothing comes twice, and the poller has moved on: a later message is answered.
  const catalogueAgain = await production.say(alice, "/start");
  expect(String(catalogueAgain.params.text)).not.toBe("");
  expect(keysSentTo(alice)).toHaveLength(1);
});

test("webhook mode: a payment met by the outage is answered 503, so Telegram sends it again; settled once when it does", async () => {
  const webhookUrl = "https://shop.example.com/Morpheus%20Private/telegram/webhook";
  const productId = await startShop({ botWebhookUrl: webhookUrl });
  const { shop } = running;
  const bob = buyer(630_000_002, "Bob");
  await shop.users.touch({ id: bob.id, firstName: bob.first_name });
  const placed = await shop.orders.place({ userId: bob.id, productId, days: 30, expectedRub: 1999 });
  if (placed.kind !== "placed") throw new Error(`order not placed: ${placed.kind}`);
  const orderId = String(placed.order.id);
  await tg.waitFor((calls) => calls.find((c) => c.method === "setWebhook"), 10_000);

  const chargeId = "stxChargeWebhook1";
  const update = {
    update_id: 900,
    message: {
      message_id: 1,
      date: Math.floor(Date.now() / 1000),
      chat: { id: bob.id, type: "private", first_name: bob.first_name },
      from: { is_bot: false, ...bob },
      successful_payment: {
        currency: "XTR",
        total_amount: 150,
        invoice_payload: orderId,
        telegram_payment_charge_id: chargeId,
        provider_payment_charge_id: "",
      },
    },
  };
  const secret = webhookSecret(running.shop.deps.config)!;
  const deliver = () =>
    fetch(`${running.url}telegram/webhook`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": secret },
      body: JSON.stringify(update),
    });

  cut();
  const refused = await deliver();
  expect(refused.status).toBe(503);
  restore();

  // Telegram's next attempt, once the database is back.
  let again = await deliver();
  for (let i = 0; again.status !== 200 && i < 20; i++) {
    await Bun.sleep(500);
    again = await deliver();
  }
  expect(again.status).toBe(200);
  await tg.waitFor(() => keysSentTo(bob).length > 0, 10_000);
  expect((await deliver()).status).toBe(200);
  const sql = running.shop.deps.sql;
  const ledger = await sql`select transaction_id, outcome from payments where order_id = ${orderId}`;
  expect([...ledger]).toEqual([{ transaction_id: chargeId, outcome: "applied" }]);
  await Bun.sleep(300);
  expect(keysSentTo(bob)).toHaveLength(1);
});
