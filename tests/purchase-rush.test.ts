/**
 * A rush on the last keys, through the real bot and a fake Bot API: 50 buyers press «Подтвердить» at the same
 * moment for a product with 10 keys left. 10 get a payment page with a key held for them; 40 get the short
 * «no keys» notice and the refreshed card; then the 10 pay at once and get 10 distinct keys.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import type { RunningShop } from "../src/server.ts";
import { AnypayNotifier } from "./helpers/anypay.ts";
import { buttonData, buttonsOf, buyer, messageIdOf, waitUntil } from "./helpers/bot.ts";
import { type FakeTelegram, type RecordedCall, TEST_TOKEN, type TgUser } from "./helpers/fake-telegram.ts";
import { type ProductionShop, startProductionShop } from "./helpers/running-shop.ts";

setDefaultTimeout(60_000);

const MERCHANT_ID = "70002";
const SECRET = "rush-anypay-secret";
const KEYS = 10;
const BUYERS = Array.from({ length: 50 }, (_, i) => buyer(556_000_000 + i, `Buyer ${i}`));

let tg: FakeTelegram;
let running: RunningShop;
let production: ProductionShop;

beforeAll(async () => {
  production = await startProductionShop({ anypayAllowedIps: ["185.162.128.38"] });
  ({ tg, running } = production);
  const { shop } = running;
  const product = await shop.products.create({ name: "Rush" });
  await shop.products.setPrice(product.id, 30, 1999);
  await shop.products.setPrice(product.id, 7, 899);
  await shop.keys.generate(product.id, 30, KEYS);
  await shop.keys.generate(product.id, 7, 5);
  await shop.settings.update({
    botToken: TEST_TOKEN,
    botEnabled: true,
    anypayMerchantId: MERCHANT_ID,
    anypaySecretKey: SECRET,
  });
});

afterAll(async () => {
  await production?.stop();
});

const nextTo = (user: TgUser, from: number) => production.nextTo(user, from, 15_000);
const press = (user: TgUser, text: string, under: RecordedCall) => production.press(user, text, under);

test("50 buyers confirm at once for 10 keys: 10 payment pages, 40 «no keys» notices with the fresh card, 10 distinct keys delivered", async () => {
  // Everyone walks up to the confirmation screen first.
  const confirmations = await Promise.all(
    BUYERS.map(async (user) => {
      const from = tg.calls.length;
      tg.sendText(TEST_TOKEN, user, "/start");
      const catalogue = await nextTo(user, from);
      const card = await press(user, "Rush", catalogue);
      return await press(user, "30 дней • 1999₽", card);
    }),
  );
  // …then all press «Подтвердить» together.
  const from = tg.calls.length;
  for (const [i, user] of BUYERS.entries()) {
    const under = confirmations[i]!;
    tg.pressButton(TEST_TOKEN, user, buttonData(under, "Подтвердить"), {
      message_id: messageIdOf(under),
      text: String(under.params.text ?? ""),
    });
  }
  const screens = await Promise.all(BUYERS.map((user) => nextTo(user, from)));

  const paying = screens.filter((s) => buttonsOf(s).some((b) => b.url?.startsWith("https://anypay.io/merchant?")));
  const refused = screens.filter((s) => !paying.includes(s));
  expect(paying).toHaveLength(KEYS);
  expect(refused).toHaveLength(BUYERS.length - KEYS);
  for (const card of refused) {
    // The fresh card: the sold-out duration is gone, the one still in stock is offered.
    const labels = buttonsOf(card).map((b) => b.text);
    expect(labels).toContain("7 дней • 899₽");
    expect(labels).not.toContain("30 дней • 1999₽");
  }
  await waitUntil(
    () =>
      tg.calls
        .slice(from)
        .filter((c) => c.method === "answerCallbackQuery" && c.params.text === "Ключей на 30 дней сейчас нет.")
        .length ===
      BUYERS.length - KEYS,
    "40 «no keys» notices",
    10_000,
  );

  const { shop } = running;
  const held = await shop.deps.sql<{ order_id: string }[]>`
    select k.order_id from keys k join products p on p.id = k.product_id
    where p.name = 'Rush' and k.days = 30 and k.state = 'reserved'`;
  expect(new Set(held.map((k) => k.order_id)).size).toBe(KEYS);

  // The ten pay at the same moment.
  const notifier = new AnypayNotifier(`${running.url}payments/anypay`, MERCHANT_ID, SECRET);
  const answers = await Promise.all(
    paying.map((screen) => {
      const q = new URL(buttonsOf(screen).find((b) => b.url)!.url!).searchParams;
      return notifier.send(notifier.paid({ id: Number(q.get("pay_id")), amountRub: Number(q.get("amount")) }));
    }),
  );
  expect(answers.every((a) => a.status === 200 && a.body === "OK")).toBe(true);
  const winners = paying.map((s) => Number(s.params.chat_id));
  await waitUntil(
    () => winners.every((id) => tg.callsOf("sendMessage", id).some((c) => /^Ключ: /.test(String(c.params.text)))),
    "10 purchases delivered",
    15_000,
  );
  const delivered = winners.map(
    (id) =>
      /^Ключ: (\S+)/.exec(
        String(tg.callsOf("sendMessage", id).find((c) => /^Ключ: /.test(String(c.params.text)))!.params.text),
      )![1],
  );
  expect(new Set(delivered).size).toBe(KEYS);
});
