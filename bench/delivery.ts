/**
 * bench/delivery: how long a buyer waits for the purchase once AnyPay has been told "OK". The shop runs as production
 * wires it (runShop: HTTP server, bot polling the fake Bot API, the delivery job with its default settings, LISTEN
 * for queued deliveries); BURST buyers each have an order placed, then AnyPay's notifications for all of them arrive
 * at once, signed as AnyPay signs them (tests/helpers/anypay.ts). For each buyer the clock runs from the moment our
 * endpoint's HTTP 200 "OK" reached the notifier to the moment the fake Bot API received that buyer's sendDocument.
 * ROUNDS bursts, each on new orders; the figures pool every buyer of every round.
 *
 * Standalone: `bun run bench/delivery.ts` (BENCH_ROUNDS).
 */
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisCache } from "../src/cache/cache.ts";
import { loadConfig } from "../src/config.ts";
import { connectDatabase } from "../src/db/client.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { runShop } from "../src/server.ts";
import { AnypayNotifier } from "../tests/helpers/anypay.ts";
import { FakeTelegram, TEST_TOKEN } from "../tests/helpers/fake-telegram.ts";
import {
  type BenchResult,
  benchDatabase,
  bounded,
  type Check,
  clearRedisPrefix,
  load,
  median,
  ms,
  quantile,
  REDIS_URL,
} from "./lib.ts";

const BURST = 50;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MERCHANT_ID = "10001";
const SECRET_KEY = "bench-delivery-secret";
const DEADLINE_MS = 3 * 60_000;
const TARGET_P95_MS = 500;

export function runDeliveryBench(): Promise<BenchResult> {
  return bounded("delivery", DEADLINE_MS, measure);
}

async function measure(defer: (step: () => Promise<unknown>) => void): Promise<BenchResult> {
  const started = performance.now();
  const loadBefore = load();
  setLogLevel("error");
  const db = await benchDatabase("delivery");
  defer(db.drop);
  const sql = connectDatabase(db.url, { max: 10 });
  defer(() => sql.end({ timeout: 2 }));
  const prefix = `mphbench:${Date.now().toString(36)}${process.pid}:delivery:`;
  defer(() => clearRedisPrefix(prefix));
  const cache = new RedisCache(REDIS_URL, prefix);
  defer(() => cache.close());
  await cache.ready(2_000);
  const tg = new FakeTelegram([TEST_TOKEN]).start();
  defer(() => tg.stop());
  const dataDir = join(tmpdir(), `mph-bench-delivery-${process.pid}`);
  defer(() => rm(dataDir, { recursive: true, force: true }));
  const config = {
    ...loadConfig({}),
    databaseUrl: db.url,
    redisUrl: REDIS_URL,
    redisPrefix: prefix,
    telegramApiUrl: tg.url,
    host: "127.0.0.1",
    port: 0,
    dataDir,
    sessionSecret: "bench-session-secret-that-is-long-enough-0123456789",
    anypayAllowedIps: ["127.0.0.1"],
  };
  const running = await runShop(config, { sql, cache });
  defer(() => running.stop());
  const { shop } = running;
  await shop.settings.update({ botToken: TEST_TOKEN, anypayMerchantId: MERCHANT_ID, anypaySecretKey: SECRET_KEY });
  const product = await shop.products.create({ name: "Bench Delivery" });
  await shop.products.setPrice(product.id, 30, 1999);
  // A real zip's first bytes and a little more: the first delivery uploads it, the others send Telegram's file_id.
  await shop.builds.store(product.id, new Uint8Array([0x50, 0x4b, 0x03, 0x04, ...new Array(4096).fill(7)]), "b.zip");
  await shop.keys.generate(product.id, 30, BURST * (ROUNDS + 1));
  const notifier = new AnypayNotifier(`${running.url}payments/anypay`, MERCHANT_ID, SECRET_KEY);

  const latencies: number[] = [];
  const perRound: { p50: number; p95: number; max: number; load: string }[] = [];
  // Round 0 is a warm-up (the first upload of the zip, cold statements); it is not counted.
  for (let round = 0; round <= ROUNDS; round++) {
    const buyers = Array.from({ length: BURST }, (_, i) => 700_000_000 + round * 1_000 + i);
    for (const id of buyers) await shop.users.touch({ id, firstName: `b${id}` });
    const orders = [];
    for (const userId of buyers) {
      const placed = await shop.orders.place({ userId, productId: product.id, days: 30 });
      if (placed.kind !== "placed") throw new Error(`bench/delivery: order not placed (${placed.kind})`);
      orders.push(placed.order);
    }
    const from = tg.calls.length;
    const accepted = new Map<number, number>();
    await Promise.all(
      orders.map(async (order, i) => {
        const answer = await notifier.send(notifier.paid(order), { from: null });
        if (answer.status !== 200 || answer.body !== "OK") {
          throw new Error(`bench/delivery: the notification was answered ${answer.status} ${answer.body}`);
        }
        accepted.set(buyers[i]!, Date.now());
      }),
    );
    const sent = await tg.waitFor((calls) => {
      const documents = calls.slice(from).filter((c) => c.method === "sendDocument");
      return documents.length >= BURST ? documents : undefined;
    }, 60_000);
    const round_: number[] = [];
    for (const call of sent) {
      const at = accepted.get(Number(call.params.chat_id));
      if (at === undefined) throw new Error(`bench/delivery: a document for an unknown chat ${call.params.chat_id}`);
      round_.push(Math.max(0, call.at - at));
    }
    if (round === 0) continue;
    round_.sort((a, b) => a - b);
    perRound.push({
      p50: quantile(round_, 0.5),
      p95: quantile(round_, 0.95),
      max: round_.at(-1)!,
      load: load(),
    });
    latencies.push(...round_);
  }
  latencies.sort((a, b) => a - b);
  const p50 = quantile(latencies, 0.5);
  const p95 = quantile(latencies, 0.95);
  const max = latencies.at(-1)!;
  const documents = tg.callsOf("sendDocument").length;
  const expected = BURST * (ROUNDS + 1);

  const checks: Check[] = [
    {
      id: "delivery.p95",
      benchmark: "delivery",
      what: `AnyPay's notification accepted → sendDocument received, p95 over bursts of ${BURST} payments`,
      figure: `${ms(p95)} ms`,
      baseline: `p50 ${ms(p50)} ms, max ${ms(max)} ms`,
      value: p95,
      target: `≤ ${TARGET_P95_MS} ms`,
      met: p95 <= TARGET_P95_MS,
    },
    {
      id: "delivery.errors",
      benchmark: "delivery",
      what: "purchases delivered: one document per paid order",
      figure: `${documents}`,
      baseline: `${expected} paid`,
      value: documents,
      target: `= ${expected}`,
      met: documents === expected,
    },
  ];
  const markdown = [
    "## Delivery latency",
    "",
    `The shop as production runs it (runShop: the delivery job with its defaults, woken by LISTEN when a delivery is`,
    `queued), the fake Bot API on loopback. ${BURST} orders placed, then ${BURST} AnyPay notifications at once, signed as`,
    `AnyPay signs them; per buyer, from our endpoint's HTTP 200 "OK" to the fake Bot API receiving sendDocument.`,
    `${ROUNDS} bursts after a warm-up burst (the zip's first upload), pooled: ${latencies.length} deliveries.`,
    "",
    "| burst | p50 ms | p95 ms | max ms | load average after |",
    "|---|---:|---:|---:|---|",
    ...perRound.map((r, i) => `| ${i + 1} | ${ms(r.p50)} | ${ms(r.p95)} | ${ms(r.max)} | ${r.load} |`),
    `| **all** | **${ms(p50)}** | **${ms(p95)}** | **${ms(max)}** | |`,
    "",
    `Median of the bursts' p95: ${ms(median(perRound.map((r) => r.p95)))} ms. Documents received: ${documents} for ${expected} paid orders (warm-up included).`,
    `Load average ${loadBefore} before, ${load()} after.`,
    "",
  ].join("\n");
  return { name: "delivery", markdown, checks, seconds: (performance.now() - started) / 1000 };
}

if (import.meta.main) {
  const result = await runDeliveryBench();
  console.log(result.markdown);
  for (const c of result.checks) console.log(`${c.met ? "met " : "MISS"} ${c.id}: ${c.value} (${c.target})`);
  process.exit(0);
}
