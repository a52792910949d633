/**
 * bench/catalogue: what the bot does on every catalogue screen, product card and duration press — read the
 * catalogue — from the Redis cache (a hit: one GET and a JSON parse) and straight from Postgres (the rebuild a miss
 * runs: products, prices and the stock of every product and duration from key_counts). 50 products × 5 durations
 * with 1 000 000 keys in stock; the two take turns over ROUNDS rounds of REQUESTS reads each (10 000 by default),
 * same concurrency, same data.
 *
 * Standalone: `bun run bench/catalogue.ts`. For run.ts: `runCatalogueBench()` (alias `run`).
 */
import { RedisCache } from "../src/cache/cache.ts";
import { loadConfig } from "../src/config.ts";
import { connectDatabase } from "../src/db/client.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { createShop } from "../src/shop/index.ts";
import {
  type BenchResult,
  benchDatabase,
  bounded,
  type Check,
  clearRedisPrefix,
  fmt,
  load,
  type Measurement,
  median,
  ms,
  quantile,
  REDIS_URL,
  ratio,
} from "./lib.ts";

const PRODUCTS = 50;
const DURATIONS = [1, 7, 14, 30, 90];
const KEYS = Number(process.env.BENCH_CATALOGUE_KEYS ?? 1_000_000);
const CONCURRENCY = 16;
const REQUESTS = Number(process.env.BENCH_CATALOGUE_REQUESTS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** Calls `read` `count` times in all, from CONCURRENCY callers. */
async function measure(name: string, count: number, read: () => Promise<unknown>): Promise<Measurement> {
  const latencies: number[] = [];
  let errors = 0;
  let left = count;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (left > 0) {
        left--;
        const t0 = performance.now();
        try {
          await read();
        } catch {
          errors++;
        }
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    name,
    rps: latencies.length / elapsed,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    requests: latencies.length,
    errors,
  };
}

export function runCatalogueBench(): Promise<BenchResult> {
  return bounded("catalogue", 4 * 60_000, async (defer) => {
    const started = performance.now();
    setLogLevel("error");
    const id = `${Date.now().toString(36)}${process.pid}`;
    const prefix = `mphbench:${id}:catalogue:`;
    defer(() => clearRedisPrefix(prefix));
    const db = await benchDatabase("catalogue");
    defer(db.drop);
    const sql = connectDatabase(db.url, { max: 10 });
    defer(() => sql.end({ timeout: 2 }));
    const cache = new RedisCache(REDIS_URL, prefix);
    defer(() => cache.close());
    const loadBefore = load();
    const seedStarted = performance.now();
    await sql`
          insert into products (name, description)
          select 'Продукт ' || g, 'Описание продукта ' || g from generate_series(1, ${PRODUCTS}) g`;
    await sql`
          insert into prices (product_id, days, rub)
          select p.id, d, 100 * d + p.id from products p, unnest(${DURATIONS}::int[]) d`;
    // Every key in stock, spread evenly over the 250 offers: the most a rebuild ever has to count.
    await sql`
          insert into keys (product_id, days, key)
          select 1 + g % ${PRODUCTS}, (${DURATIONS}::int[])[1 + (g / ${PRODUCTS}) % ${DURATIONS.length}], 'CAT-' || g
          from generate_series(0, ${KEYS - 1}) g`;
    await sql`vacuum analyze`;
    const seedS = (performance.now() - seedStarted) / 1000;

    const shop = createShop({ sql, cache, config: loadConfig({}) });
    const expected = await shop.catalogue.fromDatabase();
    const warm = await shop.catalogue.view();
    const stock = expected.reduce((sum, p) => sum + p.offers.reduce((s, o) => s + o.stock, 0), 0);
    if (JSON.stringify(warm) !== JSON.stringify(expected) || warm.length !== PRODUCTS || stock !== KEYS) {
      throw new Error("bench/catalogue: the cached catalogue differs from the database's");
    }
    const bytes = JSON.stringify(expected).length;

    const cases = [
      { id: "hit", name: "catalogue from the Redis cache (a hit)", read: () => shop.catalogue.view() },
      {
        id: "rebuild",
        name: "catalogue from Postgres (the rebuild a miss runs)",
        read: shop.catalogue.fromDatabase,
      },
    ];
    for (const c of cases) await measure(c.id, 500, c.read);
    const rounds: Map<string, Measurement>[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const round = new Map<string, Measurement>();
      const order = r % 2 === 0 ? cases : [...cases].reverse();
      for (const c of order) round.set(c.id, await measure(c.name, REQUESTS, c.read));
      rounds.push(round);
    }
    const summary = cases.map((c) => {
      const runs = rounds.map((r) => r.get(c.id)!);
      return {
        ...c,
        rps: median(runs.map((m) => m.rps)),
        p50Ms: median(runs.map((m) => m.p50Ms)),
        p99Ms: median(runs.map((m) => m.p99Ms)),
        requests: runs.reduce((s, m) => s + m.requests, 0),
        errors: runs.reduce((s, m) => s + m.errors, 0),
        perRound: runs.map((m) => m.rps),
      };
    });
    const [hit, rebuild] = summary as [(typeof summary)[0], (typeof summary)[0]];
    const speedup = median(rounds.map((r) => r.get("hit")!.rps / r.get("rebuild")!.rps));
    const latencyRatio = median(rounds.map((r) => r.get("rebuild")!.p50Ms / r.get("hit")!.p50Ms));
    const errors = hit.errors + rebuild.errors;
    const checks: Check[] = [
      {
        id: "catalogue.hit",
        benchmark: "catalogue",
        what: "catalogue reads from the cache vs rebuilds from Postgres (throughput)",
        figure: `${fmt(hit.rps)} reads/s`,
        baseline: `${fmt(rebuild.rps)} rebuilds/s`,
        value: speedup,
        target: "≥ 10×",
        met: speedup >= 10 && errors === 0,
      },
    ];
    const markdown = [
      "## Catalogue (bot)",
      "",
      `${PRODUCTS} products × ${DURATIONS.length} durations, ${fmt(KEYS)} keys in stock (seeded in ${seedS.toFixed(1)} s), the`,
      `catalogue ${fmt(bytes)} bytes of JSON. ${CONCURRENCY} concurrent readers in the bench process, ${fmt(REQUESTS)} reads from each`,
      `source per round, ${ROUNDS} rounds alternating which goes first; medians. A rebuild reads the stock from key_counts`,
      "(kept by triggers on keys), so it no longer counts the million keys.",
      "",
      "| source | reads/s | p50 ms | p99 ms | reads/s per round | reads | errors |",
      "|---|---:|---:|---:|---:|---:|---:|",
      ...summary.map(
        (m) =>
          `| ${m.name} | ${fmt(m.rps)} | ${ms(m.p50Ms)} | ${ms(m.p99Ms)} | ${m.perRound.map(fmt).join(" / ")} | ${fmt(m.requests)} | ${m.errors} |`,
      ),
      "",
      `A hit is **${ratio(speedup)}×** a rebuild's throughput (median of the rounds' ratios); p50 latency ${ratio(latencyRatio)}× lower.`,
      `Load average ${loadBefore} before, ${load()} after.`,
      "",
    ].join("\n");
    return { name: "catalogue", markdown, checks, seconds: (performance.now() - started) / 1000 };
  });
}

export const run = runCatalogueBench;

if (import.meta.main) {
  const result = await runCatalogueBench();
  console.log(result.markdown);
}
