/**
 * promo:add, promo:list and promo:disable (docs/operator.md#cli) as real processes on the test shop's database: what
 * they print, the exit codes, and that a code they make is the one the checkout applies.
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
  await t.shop.users.touch({ id: 900_001, firstName: "Buyer" });
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

describe("promo:add / promo:list / promo:disable", () => {
  test("a code added in any case is stored canonical, listed with its terms, and switched off by name", async () => {
    const added = await cli([
      "promo:add",
      "spring25",
      "--percent",
      "25",
      "--product",
      "Stalcraft X",
      "--days",
      "30,7",
      "--uses",
      "100",
      "--until",
      "2030-12-31",
    ]);
    expect(added).toMatchObject({ code: 0, err: "" });
    expect(added.out.trim()).toBe(
      "promo added: SPRING25, -25%, product Stalcraft X, 7,30 days, uses 100, per buyer 1, until 2030-12-31",
    );
    expect((await cli(["promo:add", "GIFT300", "--rub", "300", "--per-user", "none"])).out.trim()).toBe(
      "promo added: GIFT300, -300 RUB, all products, all durations, uses unlimited, per buyer unlimited, until -",
    );

    // The checkout applies it as typed by a buyer, in any case.
    const verdict = await t.shop.promos.check({ code: "Spring25", userId: 900_001, productId, days: 30 });
    expect(verdict).toMatchObject({ ok: true, promo: { code: "SPRING25", discount: { percent: 25 } } });

    const list = await cli(["promo:list"]);
    expect(list.code).toBe(0);
    expect(list.out.trim().split("\n")).toEqual([
      "code\tdiscount\tproduct\tdays\tused\theld\trub\tstars\tuntil\tstate",
      "GIFT300\t-300 RUB\t*\t*\t0\t0\t0\t0\t-\ton",
      "SPRING25\t-25%\tStalcraft X\t7,30\t0/100\t0\t0\t0\t2030-12-31\ton",
    ]);

    expect(await cli(["promo:disable", "spring25"])).toMatchObject({ code: 0, out: "promo disabled: SPRING25\n" });
    expect((await cli(["promo:list"])).out).toContain(
      "SPRING25\t-25%\tStalcraft X\t7,30\t0/100\t0\t0\t0\t2030-12-31\toff",
    );
    const refused = await t.shop.promos.check({ code: "SPRING25", userId: 900_001, productId, days: 30 });
    expect(refused).toMatchObject({ ok: false, reason: "disabled" });
  });

  test("wrong arguments exit 2 with the reason; a code that cannot be made exits 1 and changes nothing", async () => {
    const usage: [string[], string][] = [
      [["promo:add", "X1"], "error: give exactly one of --percent, --rub"],
      [["promo:add", "CODE1", "--percent", "5", "--rub", "5"], "error: give exactly one of --percent, --rub"],
      [["promo:add", "CODE1", "--percent", "101"], 'error: --percent must be a whole number from 1 to 100, got "101"'],
      [["promo:add", "CODE1", "--rub", "0"], 'error: --rub must be a whole number from 1 to 10000000, got "0"'],
      [["promo:add", "no spaces", "--percent", "5"], "error: code: Код — от 3 до 32 символов"],
      [["promo:add", "CODE1", "--percent", "5", "--days", "8"], 'error: days must be one of 1, 7, 14, 30, 90, got "8"'],
      [
        ["promo:add", "CODE1", "--percent", "5", "--until", "31.12.2030"],
        "error: --until must be a date like 2026-12-31",
      ],
      [
        ["promo:add", "CODE1", "--percent", "5", "--until", "2030-02-30"],
        "error: --until must be a date like 2026-12-31",
      ],
      [["promo:add", "CODE1", "--percent", "5", "--uses", "0"], "error: --uses must be a whole number from 1"],
      [["promo:disable"], "error: missing arguments"],
    ];
    for (const [args, reason] of usage) {
      const r = await cli(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.err.split("\n")[0]).toStartWith(reason);
    }
    const noProduct = await cli(["promo:add", "CODE1", "--percent", "5", "--product", "Nope"]);
    expect(noProduct).toMatchObject({ code: 1, err: "error: Продукт «Nope» не найден\n" });
    const taken = await cli(["promo:add", "gift300", "--percent", "5"]);
    expect(taken).toMatchObject({ code: 1, err: "error: Промокод GIFT300 уже есть\n" });
    expect(await cli(["promo:disable", "NOSUCH"])).toMatchObject({ code: 1, err: "error: no promo code NOSUCH\n" });
    const codes = await t.sql<{ code: string }[]>`select code from promo_codes order by code`;
    expect(codes.map((c) => c.code)).toEqual(["GIFT300", "SPRING25"]);
  });
});
