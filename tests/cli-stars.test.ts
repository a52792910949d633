/**
 * stars:set and bot:set --stars (docs/operator.md#cli) as real processes on the test shop's database: what they
 * print, the exit codes, and that the Stars price they set is the one the bot's catalogue offers.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { cleanEnv, type Finished, runToEnd } from "./helpers/process.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

setDefaultTimeout(30_000);

let t: TestShop;
let productId: number;
beforeAll(async () => {
  t = await createTestShop();
  const product = await t.shop.products.create({ name: "Stalcraft X" });
  productId = product.id;
  await t.shop.products.setPrice(product.id, 30, 1999);
  await t.shop.keys.generate(product.id, 30, 3);
});
afterAll(async () => {
  await t.close();
});

async function cli(args: string[]): Promise<Finished> {
  const env = cleanEnv({
    DATABASE_URL: t.databaseUrl,
    REDIS_URL: t.redisUrl,
    REDIS_PREFIX: t.redisPrefix,
    DATA_DIR: t.config.dataDir,
  });
  return runToEnd(["bun", "src/cli.ts", ...args], env);
}

const offerStars = async (days: number) =>
  (await t.shop.catalogue.product(productId))?.offers.find((o) => o.days === days)?.stars;

describe("stars:set", () => {
  test("sets a duration's Stars price, which the catalogue offers; 0 removes it", async () => {
    const set = await cli(["stars:set", "Stalcraft X", "30", "150"]);
    expect(set).toEqual({ code: 0, out: "Stalcraft X, 30 days: 150 Stars\n", err: "" });
    expect(await offerStars(30)).toBe(150);
    expect(await t.shop.products.starsPrices(productId)).toEqual({ 30: 150 });

    const removed = await cli(["stars:set", "Stalcraft X", "30", "0"]);
    expect(removed).toEqual({ code: 0, out: "Stalcraft X, 30 days: no Stars price\n", err: "" });
    expect(await offerStars(30)).toBeNull();
    expect(await t.shop.products.prices(productId)).toEqual({ 30: 1999 });
  });

  test("a Stars price outlives the duration going off sale in roubles, and comes back with it", async () => {
    expect((await cli(["stars:set", "Stalcraft X", "7", "60"])).out).toBe(
      "Stalcraft X, 7 days: 60 Stars (off sale until it has a price in roubles: price:set)\n",
    );
    expect(await t.shop.products.prices(productId)).toEqual({ 30: 1999 });
    expect((await cli(["price:set", "Stalcraft X", "7", "899"])).code).toBe(0);
    await t.shop.keys.generate(productId, 7, 1);
    expect(await offerStars(7)).toBe(60);
    expect((await cli(["price:set", "Stalcraft X", "7", "0"])).code).toBe(0);
    expect(await t.shop.products.prices(productId)).toEqual({ 30: 1999 });
    expect(await t.shop.products.starsPrices(productId)).toEqual({ 7: 60 });
    expect((await cli(["price:set", "Stalcraft X", "7", "999"])).code).toBe(0);
    expect(await offerStars(7)).toBe(60);
  });

  test("wrong arguments are refused with the reason, before anything is changed", async () => {
    const cases: [string[], RegExp, number][] = [
      [["stars:set", "Stalcraft X", "30", "-1"], /^error: stars must be a whole number from 0 to 100000/, 2],
      [["stars:set", "Stalcraft X", "30", "100001"], /^error: stars must be a whole number from 0 to 100000/, 2],
      [["stars:set", "Stalcraft X", "30", "1.5"], /^error: stars must be a whole number/, 2],
      [["stars:set", "Stalcraft X", "8", "10"], /^error: days must be one of 1, 7, 14, 30, 90/, 2],
      [["stars:set", "Stalcraft X", "30"], /^error: missing arguments$/, 2],
      [["stars:set", "Nothing", "30", "10"], /^error: Продукт «Nothing» не найден$/, 1],
    ];
    for (const [args, reason, code] of cases) {
      const r = await cli(args);
      expect({ args, code: r.code, out: r.out }).toEqual({ args, code, out: "" });
      expect(r.err.split("\n")[0]).toMatch(reason);
    }
    expect(await t.shop.products.starsPrices(productId)).toEqual({ 7: 60 });
  });
});

describe("bot:set --stars", () => {
  test("switches payment in Stars on and off", async () => {
    expect((await t.shop.settings.get()).starsEnabled).toBe(false);
    const on = await cli(["bot:set", "--stars", "true"]);
    expect(on).toMatchObject({ code: 0, err: "" });
    expect(on.out).toContain("stars: on");
    expect((await t.shop.settings.load()).starsEnabled).toBe(true);
    const off = await cli(["bot:set", "--stars=false"]);
    expect(off.out).toContain("stars: off");
    expect((await t.shop.settings.load()).starsEnabled).toBe(false);
    const bad = await cli(["bot:set", "--stars", "yes"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^error: --stars must be true or false, got "yes"/);
  });
});
