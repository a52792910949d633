/**
 * A Telegram Stars payment that arrives while the shop's database is away, longer than the bot's quick retries
 * (7.5 s): the real bot long-polls a fake Bot API, the shop's pool reaches PostgreSQL through a proxy the test cuts.
 * The poller keeps the update (its offset stays) and handles it again until the database is back: the order is paid
 * once and the key delivered once, instead of the payment being left to a log line.
 *
 * The poller's lock connects directly (the configuration's URL), so it is held throughout and this very poller
 * carries the update over the outage: a lost lock would restart the poller from its saved position, which hides
 * the outcome of the update in hand.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import postgres from "postgres";
import type { RunningShop } from "../src/server.ts";
import { buttonsOf, buyer } from "./helpers/bot.ts";
import { type FakeTelegram, type RecordedCall, TEST_TOKEN, type TgUser } from "./helpers/fake-telegram.ts";
import { type ProductionShop, startProductionShop } from "./helpers/running-shop.ts";
import { TcpProxy } from "./helpers/tcp-proxy.ts";

setDefaultTimeout(30_000);

let tg: FakeTelegram;
let running: RunningShop;
let production: ProductionShop;
let proxy: TcpProxy;

beforeAll(async () => {
  production = await startProductionShop(
    {},
    {
      pool: (databaseUrl) => {
        const url = new URL(databaseUrl);
        proxy = new TcpProxy(Number(url.port || 5432)).start();
        url.port = String(proxy.port);
        // The shop's pool settings (connectDatabase) but for postgres.js's reconnect backoff, which grows to 10-20 s
        // after the failed connects of an outage: the shop would then only take that much longer to come back.
        return postgres(url.toString(), {
          max: 4,
          onnotice: () => {},
          idle_timeout: 60,
          connect_timeout: 10,
          backoff: () => 0.2,
        });
      },
    },
  );
  ({ tg, running } = production);
  const { shop } = running;
  const product = await shop.products.create({ name: "Stalcraft", description: "" });
  await shop.products.setPrice(product.id, 30, 1999);
  await shop.products.setStarsPrice(product.id, 30, 150);
  await shop.keys.generate(product.id, 30, 3);
  await shop.settings.update({ botToken: TEST_TOKEN, botEnabled: true, starsEnabled: true });
}, 30_000);

let away = false;

afterAll(async () => {
  // Back for the shop's own shutdown (jobs and the poller flush their state).
  if (away) proxy.start();
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
  proxy.cut();
  away = true;
  const { chargeId } = tg.successfulPayment(TEST_TOKEN, alice, details);
  await Bun.sleep(10_000);
  expect(keysSentTo(alice)).toHaveLength(0);
  // The poller was not stopped or restarted by the outage: the update is carried over by the same one.
  expect(running.bot.status().state).toBe("polling");
  proxy.start();
  away = false;

  await tg.waitFor(() => keysSentTo(alice).length > 0, 12_000);
  const sql = running.shop.deps.sql;
  const [order] = await sql<{ status: string; transaction_id: string | null }[]>`
    select status, transaction_id from orders where id = ${details.payload}`;
  expect(order).toEqual({ status: "delivered", transaction_id: chargeId });
  const ledger = await sql`select transaction_id, outcome from payments where order_id = ${details.payload}`;
  expect([...ledger]).toEqual([{ transaction_id: chargeId, outcome: "applied" }]);

  // Nothing comes twice, and the poller has moved on: a later message is answered.
  const catalogueAgain = await production.say(alice, "/start");
  expect(String(catalogueAgain.params.text)).not.toBe("");
  expect(keysSentTo(alice)).toHaveLength(1);
});
