import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { GENERATED_KEY_PATTERN } from "../src/lib/keys.ts";
import { ShopError } from "../src/shop/errors.ts";
import { ensureProduct } from "./helpers/licence.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

let t: TestShop;
beforeAll(async () => {
  t = await createTestShop();
});
afterAll(async () => {
  await t.close();
});

describe("allocating keys", () => {
  test("200 concurrent allocations over 150 keys: 150 distinct keys sold, 50 clean out-of-stock, none twice", async () => {
    const p = await ensureProduct(t, "Rush");
    const generated = await t.shop.keys.generate(p.id, 30, 150);
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) => t.shop.keys.issue(p.id, 30, i % 3 === 0 ? 1_000 + i : undefined)),
    );
    const sold = results.flatMap((r) => (r.status === "fulfilled" ? [r.value.key] : []));
    const refused = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
    expect(sold).toHaveLength(150);
    expect(new Set(sold).size).toBe(150);
    expect(new Set(sold)).toEqual(new Set(generated));
    expect(refused).toHaveLength(50);
    for (const reason of refused) {
      expect(reason).toBeInstanceOf(ShopError);
      expect((reason as ShopError).code).toBe("out_of_stock");
    }
    const [counts] = await t.sql<{ sold: string; available: string; gifts: string }[]>`
      select count(*) filter (where state = 'sold') as sold,
             count(*) filter (where state = 'available') as available,
             count(*) filter (where gift and sold_at is not null) as gifts
      from keys where product_id = ${p.id} and days = 30`;
    expect(counts).toEqual({ sold: "150", available: "0", gifts: "150" });
  });

  test("an allocation to a Telegram user records them as the buyer, with an event in their log", async () => {
    const p = await ensureProduct(t, "Gift");
    await t.shop.keys.generate(p.id, 7, 1);
    const key = await t.shop.keys.issue(p.id, 7, 4242);
    expect(key.buyerId).toBe(4242);
    const events = await t.sql`select kind from user_events where user_id = 4242`;
    expect(events.map((e) => e.kind)).toEqual(["key_gifted"]);
  });

  test("an unsold key cannot be banned, so a buyer is never sold a key the loader refuses as «Key banned»", async () => {
    const p = await ensureProduct(t, "BanUnsold");
    const [key] = await t.shop.keys.generate(p.id, 14, 1);
    const refusal = await t.shop.keys.setBanned({ key: key! }, true).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(ShopError);
    expect((refusal as ShopError).message).toBe("Забанить можно только проданный ключ; непроданный удалите");
    const sold = await t.shop.keys.issue(p.id, 14);
    expect(sold.key).toBe(key!);
    expect(sold.bannedAt).toBeNull();
    const banned = await t.shop.keys.setBanned({ key: key! }, true);
    expect(banned.bannedAt).not.toBeNull();
  });

  test("keys of another duration or product are never handed out", async () => {
    const a = await ensureProduct(t, "Dur A");
    const b = await ensureProduct(t, "Dur B");
    await t.shop.keys.generate(a.id, 1, 2);
    await t.shop.keys.generate(b.id, 7, 2);
    await expect(t.shop.keys.issue(a.id, 7)).rejects.toMatchObject({ code: "out_of_stock" });
    await expect(t.shop.keys.issue(b.id, 1)).rejects.toMatchObject({ code: "out_of_stock" });
  });
});

describe("generating and importing keys", () => {
  test("generated keys look like MPH-XXXXX-XXXXX-XXXXX in Crockford base32 and are all different", async () => {
    const p = await ensureProduct(t, "Gen");
    const keys = await t.shop.keys.generate(p.id, 1, 2_000);
    expect(keys).toHaveLength(2_000);
    expect(new Set(keys).size).toBe(2_000);
    for (const key of keys) expect(key).toMatch(GENERATED_KEY_PATTERN);
    // Every symbol of the alphabet shows up: the generator is not stuck on a subset.
    const symbols = new Set(keys.join("").replace(/MPH|-/g, ""));
    expect(symbols.size).toBe(32);
  });

  test("import counts duplicates within the text and against keys already in the shop (any product)", async () => {
    const p = await ensureProduct(t, "Imp");
    const other = await ensureProduct(t, "Imp Other");
    await t.shop.keys.importText(other.id, 7, "TAKEN-1");
    const text = ["OLD-1", "NEW-1", "", "  NEW-2  ", "NEW-1", "TAKEN-1", "bad key", "x".repeat(129), "NEW-3\r"].join(
      "\n",
    );
    await t.shop.keys.importText(p.id, 7, "OLD-1");
    const result = await t.shop.keys.importText(p.id, 7, text);
    expect(result.imported).toBe(3);
    expect(result.duplicates).toBe(3);
    expect(result.invalid.map((i) => i.line)).toEqual([7, 8]);
    const rows = await t.sql`select key from keys where product_id = ${p.id} order by key`;
    expect(rows.map((r) => r.key)).toEqual(["NEW-1", "NEW-2", "NEW-3", "OLD-1"]);
  });

  test("a duration that is not sold is refused", async () => {
    const p = await ensureProduct(t, "Bad Dur");
    await expect(t.shop.keys.generate(p.id, 8, 1)).rejects.toMatchObject({ code: "invalid" });
    await expect(t.shop.keys.importText(p.id, 2, "A")).rejects.toMatchObject({ code: "invalid" });
  });
});

test("notes, descriptions and Telegram names keep their text but lose control characters a database refuses", async () => {
  const t2 = await createTestShop();
  try {
    const product = await t2.shop.products.create({ name: "Notes", description: "line one\r\nline\u0000 two\u0007" });
    expect((await t2.shop.products.byId(product.id))!.description).toBe("line one\nline two");
    const [key] = await t2.shop.keys.generate(product.id, 7, 1);
    await t2.shop.keys.setNote({ key: key! }, "  support\u0000 case\n#12 ");
    expect((await t2.shop.keys.find(key!))!.note).toBe("support case\n#12");
    await t2.shop.users.touch({ id: 4242, firstName: "Ива\u0000н\nПетров" });
    expect((await t2.shop.users.byId(4242))!.firstName).toBe("Иван Петров");
    await t2.shop.admins.add(4242, "owner\u0000\tphone");
    expect((await t2.shop.admins.list())[0]!.note).toBe("owner phone");
  } finally {
    await t2.close();
  }
});

describe("rules the database keeps, whatever the code does", () => {
  const refused = async (query: PromiseLike<unknown>) => {
    const error = await Promise.resolve(query).then(
      () => null,
      (e: unknown) => e as { code?: string; constraint_name?: string },
    );
    return error && { code: error.code, constraint: error.constraint_name };
  };

  test("one key per order; only a sold key can be banned; '.' and '..' are not product names", async () => {
    const p = await ensureProduct(t, "Rules");
    const [a, b] = await t.shop.keys.generate(p.id, 7, 2);
    await t.sql`insert into bot_users (telegram_id) values (4242) on conflict do nothing`;
    const [order] = await t.sql`
      insert into orders (user_id, product_id, days, amount_rub, reserved_until)
      values (4242, ${p.id}, 7, 100, now() + interval '30 minutes') returning id`;
    await t.sql`update keys set state = 'reserved', order_id = ${order!.id} where key = ${a!}`;
    expect(await refused(t.sql`update keys set state = 'reserved', order_id = ${order!.id} where key = ${b!}`)).toEqual(
      {
        code: "23505",
        constraint: "keys_order",
      },
    );
    expect(await refused(t.sql`update keys set banned_at = now() where key = ${b!}`)).toEqual({
      code: "23514",
      constraint: "keys_banned_only_sold",
    });
    for (const name of [".", "..", " Padded", "Padded "]) {
      expect(await refused(t.sql`insert into products (name) values (${name})`)).toEqual({
        code: "23514",
        constraint: "products_name_reachable",
      });
    }
    await expect(t.shop.products.create({ name: ".." })).rejects.toThrow("«..»");
  });
});
