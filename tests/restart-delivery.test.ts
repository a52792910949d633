/**
 * "The process killed between paid and delivered delivers after restart, once" — with real processes: the shop runs
 * as `bun src/main.ts` (what systemd runs), AnyPay's notification is accepted and committed, Telegram fails the
 * first send, the process is killed with SIGKILL (no cleanup at all), and a new process delivers exactly once.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { AnypayNotifier } from "./helpers/anypay.ts";
import { FakeTelegram, TEST_TOKEN } from "./helpers/fake-telegram.ts";
import { BUILD_ZIP } from "./helpers/payments.ts";
import { type Started, shopProcesses } from "./helpers/process.ts";
import { freePort } from "./helpers/servers.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

setDefaultTimeout(120_000);

const MERCHANT = "80001";
const SECRET = "restart-test-secret";
const BUYER = 777_000_001;

let t: TestShop;
let tg: FakeTelegram;

beforeAll(async () => {
  tg = new FakeTelegram([TEST_TOKEN]).start();
  t = await createTestShop();
  const product = await t.shop.products.create({ name: "Restart" });
  await t.shop.products.setPrice(product.id, 30, 1999);
  await t.shop.keys.generate(product.id, 30, 2);
  await t.shop.builds.store(product.id, BUILD_ZIP, "restart.zip");
  await t.shop.users.touch({ id: BUYER, firstName: "Buyer" });
  await t.shop.settings.update({ botToken: TEST_TOKEN, anypayMerchantId: MERCHANT, anypaySecretKey: SECRET });
});

afterAll(async () => {
  await shops.killAll();
  await t.close();
  await tg.stop();
});

const shops = shopProcesses(() => ({
  DATABASE_URL: t.databaseUrl,
  REDIS_URL: t.redisUrl,
  REDIS_PREFIX: t.redisPrefix,
  SESSION_SECRET: "restart-test-session-secret-0123456789",
  TELEGRAM_API_URL: tg.url,
  DATA_DIR: t.config.dataDir,
}));
const shopProcess = (port: number): Started => shops.start(port);

test("paid, then killed before the buyer got the key: the next process delivers it, exactly once", async () => {
  const placed = await t.shop.orders.place({
    userId: BUYER,
    productId: (await t.shop.products.require("Restart")).id,
    days: 30,
  });
  if (placed.kind !== "placed") throw new Error(placed.kind);
  const order = placed.order;

  // Telegram is down for the first process: every send fails, so the purchase stays undelivered.
  const telegramDown = tg.onCall((c) =>
    c.method === "sendDocument" ? { code: 502, description: "Bad Gateway" } : undefined,
  );
  const port = freePort();
  const first = shopProcess(port);
  await first.waitFor(/http listening/, 30_000);
  const notifier = new AnypayNotifier(`http://127.0.0.1:${port}/Morpheus%20Private/payments/anypay`, MERCHANT, SECRET);
  const answer = await notifier.send(notifier.paid(order));
  expect(answer).toMatchObject({ status: 200, body: "OK" });
  await tg.waitFor((calls) => calls.some((c) => c.method === "sendDocument"), 15_000);
  // Kill only once the failed send is on record with its backoff. Killed before that, the delivery would wait out
  // its whole claim lease (two minutes, so a slow send is never sent twice); that case is in delivery.test.ts.
  for (const until = Date.now() + 15_000; ; await Bun.sleep(50)) {
    const [row] = await t.sql`select last_error from deliveries where order_id = ${order.id}`;
    if (row?.last_error) break;
    if (Date.now() > until) throw new Error("the first process never recorded the failed send");
  }

  first.proc.kill("SIGKILL");
  await first.proc.exited;
  const [paid] = await t.sql`
    select o.status, d.status as delivery from orders o join deliveries d on d.order_id = o.id where o.id = ${order.id}`;
  expect(paid).toEqual({ status: "paid", delivery: "pending" });

  // Telegram is back; a new process (another port, as after a restart) picks the delivery up from the outbox.
  telegramDown();
  const failedSends = tg.callsOf("sendDocument", BUYER).length;
  // The killed process may have failed more than once, and its backoff stands: the next try is due then.
  const [due] = await t.sql<{ ms: number }[]>`
    select greatest(0, extract(epoch from (next_attempt_at - now())) * 1000)::int as ms
    from deliveries where order_id = ${order.id}`;
  const second = shopProcess(freePort());
  await second.waitFor(/http listening/, 30_000);
  const delivered = await tg.waitFor(
    (calls) => calls.filter((c) => c.method === "sendDocument" && Number(c.params.chat_id) === BUYER)[failedSends],
    due!.ms + 20_000,
  );
  const [key] = await t.sql<{ key: string }[]>`select key from keys where order_id = ${order.id}`;
  expect(String(delivered.params.caption).replaceAll("\r", "")).toBe(
    `Ключ: ${key!.key}\nТовар: Restart 30 дней\nСпасибо за покупку!`,
  );

  // Once: no further send arrives, and the order is closed as delivered.
  await Bun.sleep(1_500);
  expect(tg.callsOf("sendDocument", BUYER).length).toBe(failedSends + 1);
  const [done] = await t.sql`
    select o.status, d.status as delivery from orders o join deliveries d on d.order_id = o.id where o.id = ${order.id}`;
  expect(done).toEqual({ status: "delivered", delivery: "sent" });
  second.proc.kill("SIGTERM");
  expect(await second.proc.exited).toBe(0);
});
