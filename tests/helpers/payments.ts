import { createTelegramMessenger } from "../../src/bot/messenger.ts";
import type { Config } from "../../src/config.ts";
import { type DeliveryJob, type DeliveryJobOptions, startDeliveryJob } from "../../src/jobs/delivery.ts";
import { type Checkout, createCheckout } from "../../src/payments/checkout.ts";
import type { Messenger } from "../../src/shop/messenger.ts";
import type { Order } from "../../src/shop/orders/orders.ts";
import { AnypayNotifier } from "./anypay.ts";
import { FakeTelegram, TEST_TOKEN } from "./fake-telegram.ts";
import { createTestShop, type TestShop } from "./shop.ts";

export const MERCHANT_ID = "51234";
export const SECRET_KEY = "anypay-secret-for-tests";
export const ADMIN_ID = 700_000_001;

/** A tiny but real zip (local file header magic, then bytes): what an admin uploads as a product's build. */
export const BUILD_ZIP = new Uint8Array([0x50, 0x4b, 0x03, 0x04, ...new TextEncoder().encode("morpheus loader build")]);

export type PayShop = TestShop & {
  tg: FakeTelegram;
  notifier: AnypayNotifier;
  messenger: Messenger;
  payments: Checkout;
  job: DeliveryJob | null;
  startJob: (options?: DeliveryJobOptions) => DeliveryJob;
  /** A product on sale at `rub` for `days`, with `keys` generated keys and (by default) a build. */
  product: (
    name: string,
    options?: { days?: number; rub?: number; keys?: number; build?: boolean },
  ) => Promise<{ id: number; keys: string[] }>;
  buyer: (id: number, username?: string) => Promise<number>;
  placeOrder: (userId: number, productId: number, days?: number) => Promise<Order>;
  /** Waits until the order's delivery is recorded as sent (or the timeout passes). */
  delivered: (orderId: number, timeoutMs?: number) => Promise<void>;
  stop: () => Promise<void>;
};

/**
 * A shop listening on a real loopback port with AnyPay configured, one bot admin, a fake Bot API server, and
 * (unless `job: false`) the delivery job running with short test timings.
 */
export async function createPayShop(
  options: { job?: boolean; jobOptions?: DeliveryJobOptions; config?: Partial<Config> } = {},
): Promise<PayShop> {
  const tg = new FakeTelegram([TEST_TOKEN]).start();
  const t = await createTestShop({ telegramApiUrl: tg.url, ...options.config });
  await t.shop.settings.update({ botToken: TEST_TOKEN, anypayMerchantId: MERCHANT_ID, anypaySecretKey: SECRET_KEY });
  await t.shop.users.touch({ id: ADMIN_ID, firstName: "Admin", username: "shop_admin" });
  await t.shop.admins.add(ADMIN_ID);
  t.app.listen({ hostname: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${t.app.server!.port}${encodeURI(t.config.basePath)}/payments/anypay`;
  const messenger = createTelegramMessenger({ telegramApiUrl: tg.url, token: async () => TEST_TOKEN });
  const payments = createCheckout({ shop: t.shop, messenger, config: t.config });
  const jobs: DeliveryJob[] = [];

  const startJob = (jobOptions: DeliveryJobOptions = {}) => {
    const job = startDeliveryJob(t.shop, messenger, {
      pollMs: 100,
      backoffMs: 50,
      ...options.jobOptions,
      ...jobOptions,
    });
    jobs.push(job);
    return job;
  };

  const shop: PayShop = {
    ...t,
    tg,
    notifier: new AnypayNotifier(url, MERCHANT_ID, SECRET_KEY),
    messenger,
    payments,
    job: options.job === false ? null : startJob(),
    startJob,
    async product(name, o = {}) {
      const days = o.days ?? 30;
      const product = await t.shop.products.create({ name });
      await t.shop.products.setPrice(product.id, days, o.rub ?? 1999);
      const keys = (o.keys ?? 0) > 0 ? await t.shop.keys.generate(product.id, days, o.keys!) : [];
      if (o.build !== false) await t.shop.builds.store(product.id, BUILD_ZIP, "loader.zip");
      return { id: product.id, keys };
    },
    async buyer(id, username) {
      await t.shop.users.touch({ id, firstName: `Buyer ${id}`, username });
      return id;
    },
    async placeOrder(userId, productId, days = 30) {
      const result = await t.shop.orders.place({ userId, productId, days });
      if (result.kind !== "placed" && result.kind !== "existing") throw new Error(`order not placed: ${result.kind}`);
      return result.order;
    },
    async delivered(orderId, timeoutMs = 3_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const [row] = await t.sql<{ status: string }[]>`select status from deliveries where order_id = ${orderId}`;
        if (row?.status === "sent") return;
        if (Date.now() > deadline)
          throw new Error(`order ${orderId} not delivered (delivery: ${row?.status ?? "none"})`);
        await Bun.sleep(20);
      }
    },
    async stop() {
      for (const job of jobs) await job.stop();
      await payments.idle();
      await t.app.stop(true);
      await t.close();
      await tg.stop();
    },
  };
  return shop;
}

/** Counts of every table a payment touches, and Telegram calls: equal before and after means "no side effects". */
export async function sideEffects(s: PayShop) {
  const [row] = await s.sql<Record<string, string>[]>`
    select
      (select count(*) from payments) as payments,
      (select count(*) from deliveries) as deliveries,
      (select count(*) from user_events) as events,
      (select string_agg(id || ':' || status, ',' order by id) from orders) as orders,
      (select string_agg(id || ':' || state, ',' order by id) from keys) as keys`;
  // Messages to the admins are left out: a refused notification from AnyPay's address rightly alerts them.
  const toBuyers = s.tg.calls.filter((c) => c.params.chat_id === undefined || Number(c.params.chat_id) !== ADMIN_ID);
  return { ...row, telegramCalls: toBuyers.length };
}
