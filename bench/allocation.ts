/**
 * Key allocation under load: N buyers confirm at the same moment for N keys of one product (the allocation: each
 * order with its key reserved in one transaction), then all pay at once, and the clock stops when the (fake) Bot
 * API has received the N-th purchase. Each buyer's path is the real one: the order, a signed AnyPay notification
 * over HTTP, the outbox, the delivery job. The phases follow each other so that the allocation is timed alone: the
 * strategy under test changes nothing after it.
 *
 * Run twice in the same process on fresh databases: allocation with SKIP LOCKED (what the shop does) and with plain
 * FOR UPDATE (the baseline: concurrent buyers queue behind the same first row).
 *
 *   bun run bench/allocation.ts            # prints a table; ORDERS=1000 ROUNDS=3 by default
 *   import { run } from "./allocation.ts"; const figures = await run({ orders: 1000, rounds: 3 });
 *
 * Needs PostgreSQL (BENCH_DATABASE_URL, else DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres, as a
 * role that may create databases). The cache is in-process, so Redis is not measured here.
 */
import { rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { createTelegramMessenger } from "../src/bot/messenger.ts";
import { MemoryCache } from "../src/cache/cache.ts";
import { loadConfig } from "../src/config.ts";
import { connectDatabase } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { startDeliveryJob } from "../src/jobs/delivery.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { createCheckout } from "../src/payments/checkout.ts";
import { buildHttpApp } from "../src/server.ts";
import { createShop } from "../src/shop/index.ts";
import { type AllocationStrategy, createOrders } from "../src/shop/orders/orders.ts";
import { AnypayNotifier } from "../tests/helpers/anypay.ts";
import { FakeTelegram, TEST_TOKEN } from "../tests/helpers/fake-telegram.ts";
import type { BenchResult, Check } from "./lib.ts";
import { bounded, dropDatabasesLike, load } from "./lib.ts";

export type AllocationRun = {
  strategy: AllocationStrategy;
  /** From the first confirmation to the N-th purchase received by the Bot API. */
  allDeliveredMs: number;
  /** From the first confirmation until every order had its key reserved. */
  allReservedMs: number;
  deliveredPerSecond: number;
  /** Buyers told "sold out" although a key was free: must be 0. */
  wronglySoldOut: number;
  /** Distinct keys delivered: must equal the number of orders. */
  distinctKeys: number;
};

export type AllocationFigures = {
  name: "allocation";
  /** Runs per strategy, alternating; the figures are the medians. */
  rounds: number;
  /** 1-minute load average before and after: on a shared 2-core machine, read the ratios with it. */
  loadAverage: [number, number];
  orders: number;
  keys: number;
  dbPool: number;
  deliveryConcurrency: number;
  skipLocked: AllocationRun;
  forUpdate: AllocationRun;
  /** forUpdate.allDeliveredMs / skipLocked.allDeliveredMs: how many times faster SKIP LOCKED is, end to end. */
  ratio: number;
  /** The same for the allocation alone (until every order had its key reserved). */
  allocationRatio: number;
};

const MERCHANT_ID = "10001";
const SECRET_KEY = "bench-secret";
const DB_POOL = 10;
const DELIVERY_CONCURRENCY = 16;

function adminUrl(): string {
  return process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
}

async function once(strategy: AllocationStrategy, orders: number): Promise<AllocationRun> {
  const name = `mph_bench_alloc_${strategy}_${process.pid}_${Date.now().toString(36)}`;
  const admin = postgres(adminUrl(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  const sql = connectDatabase(url.toString(), { max: DB_POOL });
  const tg = new FakeTelegram([TEST_TOKEN]).start();
  const dataDir = join(tmpdir(), name);
  const cleanup: (() => Promise<unknown>)[] = [];
  try {
    await migrate(sql);
    const config = {
      ...loadConfig({}),
      databaseUrl: url.toString(),
      telegramApiUrl: tg.url,
      dataDir,
      trustedProxies: ["127.0.0.1"],
      anypayAllowedIps: ["127.0.0.1"],
    };
    const shop = createShop({ sql, cache: new MemoryCache(), config });
    await shop.settings.update({ botToken: TEST_TOKEN, anypayMerchantId: MERCHANT_ID, anypaySecretKey: SECRET_KEY });
    const product = await shop.products.create({ name: "Bench" });
    await shop.products.setPrice(product.id, 30, 1999);
    await shop.builds.store(product.id, new Uint8Array([0x50, 0x4b, 0x03, 0x04, 1, 2, 3, 4]), "bench.zip");
    await shop.keys.generate(product.id, 30, orders);
    const buyers = Array.from({ length: orders }, (_, i) => 500_000_000 + i);
    for (let i = 0; i < buyers.length; i += 100) {
      await Promise.all(buyers.slice(i, i + 100).map((id) => shop.users.touch({ id, firstName: `b${id}` })));
    }

    const messenger = createTelegramMessenger({ telegramApiUrl: tg.url, token: async () => TEST_TOKEN });
    const checkout = createCheckout({ shop, messenger, config });
    const app = buildHttpApp(shop, config, { checkout });
    app.listen({ hostname: "127.0.0.1", port: 0 });
    cleanup.push(() => app.stop(true));
    const notifier = new AnypayNotifier(
      `http://127.0.0.1:${app.server!.port}${encodeURI(config.basePath)}/payments/anypay`,
      MERCHANT_ID,
      SECRET_KEY,
    );
    const job = startDeliveryJob(shop, messenger, { concurrency: DELIVERY_CONCURRENCY, pollMs: 1_000 });
    cleanup.push(() => job.stop());
    // The strategy under test decides how placing an order takes its key; everything else is the shop as it runs.
    const placing = createOrders(shop.deps, { allocation: strategy });

    // Every buyer confirms at the same moment: the allocation strategy alone decides how fast keys are handed out.
    const t0 = performance.now();
    const placements = await Promise.all(
      buyers.map((userId) => placing.place({ userId, productId: product.id, days: 30 })),
    );
    const reservedAt = performance.now();
    const soldOut = placements.filter((p) => p.kind !== "placed").length;
    // Then they all pay at once, and the delivery job sends every purchase.
    await Promise.all(
      placements.map(async (placed) => {
        if (placed.kind !== "placed") return;
        const answer = await notifier.send(notifier.paid(placed.order), { from: null });
        if (answer.body !== "OK") throw new Error(`notification answered ${answer.status} ${answer.body}`);
      }),
    );
    const expected = orders - soldOut;
    await tg.waitFor((calls) => calls.filter((c) => c.method === "sendDocument").length >= expected, 600_000);
    const t1 = performance.now();
    const keys = new Set(tg.callsOf("sendDocument").map((c) => /Ключ: (\S+)/.exec(String(c.params.caption))?.[1]));
    return {
      strategy,
      allDeliveredMs: Math.round(t1 - t0),
      allReservedMs: Math.round(reservedAt - t0),
      deliveredPerSecond: Math.round((expected / (t1 - t0)) * 1000),
      wronglySoldOut: soldOut,
      distinctKeys: keys.size,
    };
  } finally {
    for (const step of cleanup.reverse()) await step().catch(() => {});
    await sql.end({ timeout: 2 });
    await tg.stop();
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.end();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function median(runs: AllocationRun[]): AllocationRun {
  const mid = (pick: (r: AllocationRun) => number) => {
    const sorted = runs.map(pick).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)]!;
  };
  return {
    strategy: runs[0]!.strategy,
    allDeliveredMs: mid((r) => r.allDeliveredMs),
    allReservedMs: mid((r) => r.allReservedMs),
    deliveredPerSecond: mid((r) => r.deliveredPerSecond),
    wronglySoldOut: Math.max(...runs.map((r) => r.wronglySoldOut)),
    distinctKeys: Math.min(...runs.map((r) => r.distinctKeys)),
  };
}

export async function run(options: { orders?: number; rounds?: number } = {}): Promise<AllocationFigures> {
  const orders = options.orders ?? 1_000;
  const rounds = options.rounds ?? 3;
  const loadBefore = loadavg()[0]!;
  const skip: AllocationRun[] = [];
  const wait: AllocationRun[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternating, so a burst of load from elsewhere does not land on one strategy only.
    if (i % 2 === 0) {
      skip.push(await once("skip_locked", orders));
      wait.push(await once("wait", orders));
    } else {
      wait.push(await once("wait", orders));
      skip.push(await once("skip_locked", orders));
    }
  }
  const skipLocked = median(skip);
  const forUpdate = median(wait);
  const round2 = (n: number) => Math.round(n * 100) / 100;
  return {
    name: "allocation",
    rounds,
    loadAverage: [round2(loadBefore), round2(loadavg()[0]!)],
    orders,
    keys: orders,
    dbPool: DB_POOL,
    deliveryConcurrency: DELIVERY_CONCURRENCY,
    skipLocked,
    forUpdate,
    ratio: round2(forUpdate.allDeliveredMs / skipLocked.allDeliveredMs),
    allocationRatio: round2(forUpdate.allReservedMs / skipLocked.allReservedMs),
  };
}

/** For run.ts: the figures as a RESULTS.md section and the target (SKIP LOCKED ≥ 3× plain FOR UPDATE). */
export async function runAllocationBench(options: { orders?: number; rounds?: number } = {}): Promise<BenchResult> {
  const started = performance.now();
  setLogLevel("error");
  const loadBefore = load();
  const figures = await bounded("allocation", 4 * 60_000, (defer) => {
    // Each run drops its own database when it ends; this catches those of a run cut short by the deadline.
    defer(() => dropDatabasesLike(`mph_bench_alloc_%_${process.pid}_%`));
    return run(options);
  });
  const row = (r: AllocationRun, label: string) =>
    `| ${label} | ${r.allReservedMs} | ${r.allDeliveredMs} | ${r.deliveredPerSecond} | ${r.distinctKeys} | ${r.wronglySoldOut} |`;
  const valid = [figures.skipLocked, figures.forUpdate].every(
    (r) => r.distinctKeys === figures.orders && r.wronglySoldOut === 0,
  );
  const checks: Check[] = [
    {
      id: "allocation.skip-locked",
      benchmark: "allocation",
      what: `${figures.orders} buyers reserving ${figures.keys} keys at once: SKIP LOCKED vs plain FOR UPDATE`,
      figure: `${figures.skipLocked.allReservedMs} ms`,
      baseline: `${figures.forUpdate.allReservedMs} ms`,
      value: figures.allocationRatio,
      target: "≥ 3×",
      met: figures.allocationRatio >= 3 && valid,
    },
  ];
  const markdown = [
    "## Key allocation",
    "",
    `${figures.orders} buyers confirm at the same moment for ${figures.keys} keys of one product (each order with its key reserved in`,
    "one transaction: the allocation, timed alone); then all pay at once — AnyPay's signed notification over HTTP — and",
    `the delivery job sends every purchase to the fake Bot API. Pool ${figures.dbPool}, ${figures.deliveryConcurrency} deliveries in flight, a fresh database per run;`,
    `the strategies alternate, ${figures.rounds} runs each, medians. The baseline is the same code with \`for update\` instead of`,
    "`for update skip locked` (concurrent buyers queue behind the same first free row).",
    "",
    "| allocation | all keys reserved, ms | all purchases delivered, ms | deliveries/s | distinct keys delivered | wrongly sold out |",
    "|---|---:|---:|---:|---:|---:|",
    row(figures.skipLocked, "SKIP LOCKED (the shop)"),
    row(figures.forUpdate, "plain FOR UPDATE (baseline)"),
    "",
    `SKIP LOCKED reserves every key **${figures.allocationRatio}×** as fast as plain FOR UPDATE; end to end (until the last`,
    `purchase reached Telegram) ${figures.ratio}×, as delivery then takes most of the time.`,
    `Load average ${loadBefore} before, ${load()} after.`,
    "",
  ].join("\n");
  return { name: "allocation", markdown, checks, seconds: (performance.now() - started) / 1000 };
}

if (import.meta.main) {
  const result = await runAllocationBench({
    orders: Number(process.env.ORDERS ?? 1_000),
    rounds: Number(process.env.ROUNDS ?? 3),
  });
  console.log(result.markdown);
}
