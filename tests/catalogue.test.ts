import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { CATALOGUE_CACHE_KEY, invalidateCatalogue } from "../src/cache/catalogue.ts";
import { connectDatabase, type Sql } from "../src/db/client.ts";
import { createCatalogue } from "../src/shop/products/catalogue.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

let t: TestShop;
let productId: number;

beforeAll(async () => {
  t = await createTestShop();
  const product = await t.shop.products.create({ name: "Morpheus Private", description: "Описание" });
  productId = product.id;
  await t.shop.products.setPrice(productId, 1, 299);
  await t.shop.products.setPrice(productId, 7, 899);
  await t.shop.products.setPrice(productId, 30, 1999);
  await t.shop.keys.generate(productId, 1, 2);
  await t.shop.keys.generate(productId, 7, 1);
});

afterAll(async () => {
  await t.close();
});

/** The same postgres client, counting every query it is asked to run (tagged templates and helpers alike). */
function countingSql(sql: Sql): { sql: Sql; count: () => number } {
  let queries = 0;
  const counted = new Proxy(sql, {
    apply(target, thisArg, args) {
      queries++;
      return Reflect.apply(target, thisArg, args);
    },
    get(target, prop, receiver) {
      if (prop === "begin" || prop === "unsafe" || prop === "file" || prop === "reserve") queries++;
      return Reflect.get(target, prop, receiver);
    },
  });
  return { sql: counted, count: () => queries };
}

test("a cache hit runs zero SQL queries — it even works with the database pool closed", async () => {
  const pool = connectDatabase(t.databaseUrl, { max: 2 });
  const { sql, count } = countingSql(pool);
  const catalogue = createCatalogue({ sql, cache: t.cache, config: t.config });
  await invalidateCatalogue(t);

  const miss = await catalogue.view();
  expect(count()).toBeGreaterThan(0);
  expect(miss).toEqual([
    {
      id: productId,
      name: "Morpheus Private",
      description: "Описание",
      // 30 days has a price but no key: not offered.
      offers: [
        { days: 1, rub: 299, stars: null, stock: 2 },
        { days: 7, rub: 899, stars: null, stock: 1 },
      ],
    },
  ]);

  const before = count();
  for (let i = 0; i < 100; i++) expect(await catalogue.view()).toEqual(miss);
  expect(await catalogue.product(productId)).toEqual(miss[0]!);
  expect(count() - before).toBe(0);

  // Proof beyond counting: with no database at all, a hit still answers.
  await pool.end();
  expect(await catalogue.view()).toEqual(miss);
  // …and a miss would need it.
  await t.cache.del(CATALOGUE_CACHE_KEY);
  await expect(catalogue.view()).rejects.toThrow();
});

test("every change to stock, prices or products shows in the next view", async () => {
  const { catalogue } = t.shop;
  const offers = async () =>
    (await catalogue.product(productId))?.offers.map((o) => `${o.days}:${o.rub}:${o.stock}`) ?? null;
  expect(await offers()).toEqual(["1:299:2", "7:899:1"]);

  await t.shop.keys.importText(productId, 30, "K-30-1\nK-30-2\nK-30-3");
  expect(await offers()).toEqual(["1:299:2", "7:899:1", "30:1999:3"]);

  await t.shop.products.setPrice(productId, 7, 950);
  expect(await offers()).toEqual(["1:299:2", "7:950:1", "30:1999:3"]);

  // A reservation takes the last 7-day key off sale.
  await t.sql`insert into bot_users (telegram_id) values (77)`;
  const placed = await t.shop.orders.place({ userId: 77, productId, days: 7 });
  expect(placed.kind).toBe("placed");
  expect(await offers()).toEqual(["1:299:2", "30:1999:3"]);

  await t.shop.products.setPrice(productId, 1, null);
  expect(await offers()).toEqual(["30:1999:3"]);

  await t.shop.products.setArchived(productId, true);
  expect(await offers()).toBeNull();
  await t.shop.products.setArchived(productId, false);
  expect(await offers()).toEqual(["30:1999:3"]);
});

test("a rebuild that raced a change does not leave its stale copy in the cache", async () => {
  // The rebuild's query runs, then a change commits and invalidates before the rebuild writes the cache.
  const racing = new Proxy(t.sql, {
    apply(target, thisArg, args) {
      const query = Reflect.apply(target, thisArg, args) as Promise<unknown>;
      return query.then(async (rows) => {
        await invalidateCatalogue(t);
        return rows;
      });
    },
  });
  const catalogue = createCatalogue({ sql: racing, cache: t.cache, config: t.config });
  await t.cache.del(CATALOGUE_CACHE_KEY);
  await catalogue.view();
  expect(await t.cache.get(CATALOGUE_CACHE_KEY)).toBeNull();
  // Without a race the rebuild is cached as usual.
  await t.shop.catalogue.view();
  expect(await t.cache.get(CATALOGUE_CACHE_KEY)).not.toBeNull();
});

test("misses that arrive together share one rebuild; a miss after a change never joins an older rebuild", async () => {
  const pool = connectDatabase(t.databaseUrl, { max: 2 });
  try {
    const { sql, count } = countingSql(pool);
    const catalogue = createCatalogue({ sql, cache: t.cache, config: t.config });
    await invalidateCatalogue(t);
    const views = await Promise.all(Array.from({ length: 20 }, () => catalogue.view()));
    expect(count()).toBe(1);
    expect(new Set(views.map((v) => JSON.stringify(v))).size).toBe(1);

    // A rebuild held in flight; the stock changes meanwhile; a buyer arriving after the change must see it.
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let held = false;
    const holding = new Proxy(pool, {
      apply(target, thisArg, args) {
        const query = Reflect.apply(target, thisArg, args) as Promise<unknown>;
        if (held) return query;
        held = true;
        return query.then(async (rows) => {
          await gate;
          return rows;
        });
      },
    });
    const gated = createCatalogue({ sql: holding, cache: t.cache, config: t.config });
    const stock7 = (products: Awaited<ReturnType<typeof gated.view>>) =>
      products.find((p) => p.id === productId)?.offers.find((o) => o.days === 7)?.stock ?? 0;
    await invalidateCatalogue(t);
    const early = gated.view();
    while (!held) await Bun.sleep(1);
    const before = stock7(await t.shop.catalogue.fromDatabase());
    await t.shop.keys.generate(productId, 7, 1);
    expect(stock7(await gated.view())).toBe(before + 1);
    release();
    expect(stock7(await early)).toBe(before);
  } finally {
    await pool.end();
  }
});
