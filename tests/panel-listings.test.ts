import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { decodeCursor, encodeCursor } from "../src/db/keyset.ts";
import type { UserSort } from "../src/shop/users/lists.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

let t: TestShop;
const USERS = 237;

beforeAll(async () => {
  t = await createTestShop();
  // Many users share the same timestamps: the pages must still neither skip nor repeat anyone.
  await t.sql`
    insert into bot_users (telegram_id, first_name, username, first_seen_at, last_seen_at)
    select 1000 + g, 'User ' || g, 'user' || g,
      timestamptz '2026-01-01 00:00:00.123456+00' + make_interval(hours => g % 7),
      timestamptz '2026-02-01 00:00:00.654321+00' + make_interval(mins => g % 5)
    from generate_series(1, ${USERS}) g`;
});
afterAll(async () => {
  await t.close();
});

describe("keyset pages", () => {
  for (const sort of ["last_seen", "first_seen", "id"] as UserSort[]) {
    test(`users sorted by ${sort}: forward then backward visits everyone exactly once, in order`, async () => {
      const forward: number[][] = [];
      let after: string | undefined;
      for (;;) {
        const page = await t.shop.users.list({ sort, after, limit: 50 });
        expect(page.total).toBe(USERS);
        forward.push(page.rows.map((r) => r.telegramId));
        if (!page.next) break;
        after = page.next;
      }
      const seen = forward.flat();
      expect(seen.length).toBe(USERS);
      expect(new Set(seen).size).toBe(USERS);
      expect(forward.map((p) => p.length)).toEqual([50, 50, 50, 50, 37]);

      const [all] = [
        await t.sql<{ id: string }[]>`
          select telegram_id::text as id from bot_users
          order by ${
            sort === "id"
              ? t.sql`telegram_id asc`
              : sort === "first_seen"
                ? t.sql`first_seen_at desc, telegram_id desc`
                : t.sql`last_seen_at desc, telegram_id desc`
          }`,
      ];
      expect(seen).toEqual(all!.map((r) => Number(r.id)));

      // Walking back from the last page gives the same pages in reverse.
      const backward: number[][] = [];
      let page = await t.shop.users.list({ sort, after: forward.length > 1 ? after : undefined, limit: 50 });
      backward.unshift(page.rows.map((r) => r.telegramId));
      while (page.prev) {
        page = await t.shop.users.list({ sort, before: page.prev, limit: 50 });
        backward.unshift(page.rows.map((r) => r.telegramId));
      }
      expect(backward).toEqual(forward);
    });
  }

  test("a short page read backwards falls back to the first page", async () => {
    const first = await t.shop.users.list({ sort: "id", limit: 50 });
    // Only two rows come before the 3rd one: a full page back from there is page 1.
    const cursor = encodeCursor({ key: null, id: String(first.rows[2]!.telegramId) });
    const back = await t.shop.users.list({ sort: "id", before: cursor, limit: 50 });
    expect(back.rows.map((r) => r.telegramId)).toEqual(first.rows.map((r) => r.telegramId));
    expect(back.prev).toBeNull();
  });

  test("a hand-edited or garbage cursor reads as the first page, never an error", async () => {
    const first = await t.shop.users.list({ sort: "last_seen", limit: 10 });
    const garbage = [
      "",
      "%%%",
      "bm90IGpzb24",
      encodeCursor({ key: "not a date", id: "1" }),
      encodeCursor({ key: null, id: "5" }),
    ];
    for (const bad of garbage) {
      const page = await t.shop.users.list({ sort: "last_seen", after: bad, limit: 10 });
      expect(page.rows.map((r) => r.telegramId)).toEqual(first.rows.map((r) => r.telegramId));
    }
    expect(decodeCursor(Buffer.from(JSON.stringify(["x", "1; drop table keys"])).toString("base64url"))).toBeNull();
  });

  test("user search: LIKE wildcards are taken literally", async () => {
    await t.shop.users.touch({ id: 99_001, firstName: "100%_real" });
    const pct = await t.shop.users.list({ q: "100%" });
    expect(pct.rows.map((r) => r.telegramId)).toEqual([99_001]);
    expect((await t.shop.users.list({ q: "_" })).total).toBe(0);
    expect((await t.shop.users.list({ q: "@user1" })).total).toBe(1 + 10 + 100);
  });

  test("keys: the sold list pages by sale time and the export walks every key once", async () => {
    const product = await t.shop.products.create({ name: "Keyset" });
    await t.shop.keys.generate(product.id, 1, 130);
    for (let i = 0; i < 60; i++) await t.shop.keys.issue(product.id, 1);
    const seen: string[] = [];
    for await (const batch of t.shop.keys.all(product.id, { list: "sold" }, 25)) seen.push(...batch.map((k) => k.key));
    expect(seen.length).toBe(60);
    expect(new Set(seen).size).toBe(60);
    const unsold: string[] = [];
    for await (const batch of t.shop.keys.all(product.id, { list: "unsold" }, 33))
      unsold.push(...batch.map((k) => k.key));
    expect(unsold.length).toBe(70);
    expect(unsold.some((k) => seen.includes(k))).toBe(false);
  });
});
