import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { RedisCache } from "../src/cache/cache.ts";
import { followChanges } from "../src/shop/changes.ts";
import { createShop } from "../src/shop/index.ts";
import { auth, ensureProduct, eventually, soldKey } from "./helpers/licence.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { cleanEnv, runToEnd } from "./helpers/process.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database and starting CLI processes can take seconds on a loaded machine.
setDefaultTimeout(30_000);

/**
 * Compensation (docs/panel.md#compensation): days for a product's downtime, to exactly its activated, unexpired,
 * unbanned keys, in one transaction, each with a line on its timeline; the loader hears the new expiry at once.
 */

let t: TestShop;
let c: PanelClient;

beforeAll(async () => {
  t = await createTestShop();
  const { password } = await t.shop.accounts.reset("owner");
  c = new PanelClient(t);
  await c.login("owner", password);
  await c.page("/products");
});
afterAll(async () => {
  await t.close();
});

/**
 * One product's keys in every state that matters, and one key of another product: active (twice, one answered from
 * the auth cache), active with its HWID reset, not activated, expired, banned, unsold.
 */
async function fleet(product: string) {
  const active = await soldKey(t, product, 30);
  const cached = await soldKey(t, product, 7);
  const reset = await soldKey(t, product, 30);
  const fresh = await soldKey(t, product, 30);
  const expired = await soldKey(t, product, 1);
  const banned = await soldKey(t, product, 30);
  for (const key of [active, cached, reset, expired, banned]) {
    expect((await auth(t, product, { key, uuid: "PC-1" })).status).toBe(200);
  }
  await t.shop.keys.resetHwid({ key: reset });
  await t.sql`update keys set expires_at = now() - interval '1 hour' where key = ${expired}`;
  await t.shop.keys.setBanned({ key: banned }, true);
  const p = await ensureProduct(t, product);
  const [unsold] = await t.shop.keys.generate(p.id, 30, 1);
  const other = await soldKey(t, `${product} другой`, 30);
  expect((await auth(t, `${product} другой`, { key: other, uuid: "PC-1" })).status).toBe(200);
  return { productId: p.id, active, cached, reset, fresh, expired, banned, unsold: unsold!, other };
}

async function expiries(keys: string[]): Promise<Map<string, number | null>> {
  const rows = await t.sql<{ key: string; expires_at: Date | null }[]>`
    select key, expires_at from keys where key = any(${keys})`;
  return new Map(rows.map((r) => [r.key, r.expires_at?.getTime() ?? null]));
}

const DAY_MS = 86_400_000;

describe("compensation", () => {
  test("moves exactly the activated, unexpired, unbanned keys by N days, and no others", async () => {
    const f = await fleet("Comp");
    // Answered from the auth cache now: the loader must still hear the new expiry.
    const before = await auth(t, "Comp", { key: f.cached, uuid: "PC-1" });
    const all = [f.active, f.cached, f.reset, f.fresh, f.expired, f.banned, f.unsold, f.other];
    const was = await expiries(all);

    expect(await t.shop.keys.compensate(f.productId, 3, "cli")).toBe(3);

    const now = await expiries(all);
    for (const key of [f.active, f.cached, f.reset]) expect(now.get(key)! - was.get(key)!).toBe(3 * DAY_MS);
    for (const key of [f.fresh, f.expired, f.banned, f.unsold, f.other]) expect(now.get(key)).toBe(was.get(key)!);
    const after = await auth(t, "Comp", { key: f.cached, uuid: "PC-1" });
    expect(after.body.days).toBe((before.body.days as number) + 3);
    expect(new Date(after.body.expires_at as string).getTime()).toBe(now.get(f.cached)!);

    const lines = await t.sql<{ key: string; actor: string; details: { days: number; expiresAt: string } }[]>`
      select k.key, e.actor, e.details from key_events e join keys k on k.id = e.key_id
      where e.kind = 'compensated' order by k.key`;
    expect(lines.map((l) => l.key).sort()).toEqual([f.active, f.cached, f.reset].sort());
    for (const line of lines) {
      expect(line.actor).toBe("cli");
      expect(line.details.days).toBe(3);
      expect(new Date(line.details.expiresAt).getTime()).toBe(now.get(line.key)!);
    }
  });

  test("0 or 91+ days are refused with the range, and nothing moves", async () => {
    const f = await fleet("Refused");
    const was = await expiries([f.active, f.reset]);
    for (const days of [0, 91, -1, 2.5, Number.NaN]) {
      await expect(t.shop.keys.compensate(f.productId, days)).rejects.toThrow("Компенсация — от 1 до 90 дней");
    }
    expect(await expiries([f.active, f.reset])).toEqual(was);
  });

  test("the product page's «Компенсировать» shows how many keys moved; a bad number is refused under its field", async () => {
    const f = await fleet("Panel Comp");
    const page = await c.page(`/products/${f.productId}`);
    expect(page.html).toContain("<h2>Компенсировать</h2>");
    const was = await expiries([f.active, f.fresh]);

    for (const days of ["0", "91", "неделя", ""]) {
      const res = await c.post(`/products/${f.productId}/compensate`, { days }, { htmx: true });
      expect(res.status).toBe(422);
      expect(await res.text()).toContain("Компенсация — от 1 до 90 дней");
    }
    expect(await expiries([f.active, f.fresh])).toEqual(was);

    const res = await c.post(`/products/${f.productId}/compensate`, { days: "7" }, { htmx: true });
    expect(res.status).toBe(200);
    // The key lists refresh themselves (expiries changed).
    expect(res.headers.get("hx-trigger")).toBe("keys-changed");
    expect(await res.text()).toContain("Компенсировано ключей: 3 (каждому +7 дней).");
    const now = await expiries([f.active, f.fresh]);
    expect(now.get(f.active)! - was.get(f.active)!).toBe(7 * DAY_MS);
    expect(now.get(f.fresh)).toBeNull();

    const [row] = await t.sql<{ id: string }[]>`select id from keys where key = ${f.active}`;
    const key = await c.page(`/keys/${row!.id}`);
    expect(key.html).toMatch(/Компенсация за простой: \+7 дней, теперь до \d\d\.\d\d\.\d{4}, \d\d:\d\d/);
    expect(key.html).toContain("owner, панель");
  });

  test("a plain form post gets the product page with the result; a product with no active key says so", async () => {
    const product = await ensureProduct(t, "Nobody Active");
    await soldKey(t, "Nobody Active", 30);
    const res = await c.post(`/products/${product.id}/compensate`, { days: "5" });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("<h1>Nobody Active</h1>");
    expect(html).toContain("Активных ключей нет: компенсировать некому.");
  });

  test("keys:compensate prints `compensated N keys`; 0 or 91 days and an unknown product are refused", async () => {
    const f = await fleet("Cli Comp");
    const env = cleanEnv({
      DATABASE_URL: t.databaseUrl,
      REDIS_URL: t.redisUrl,
      REDIS_PREFIX: t.redisPrefix,
      DATA_DIR: t.config.dataDir,
    });
    const cli = (args: string[]) => runToEnd(["bun", "src/cli.ts", ...args], env);
    const was = await expiries([f.active]);
    expect(await cli(["keys:compensate", "Cli Comp", "2"])).toEqual({ code: 0, out: "compensated 3 keys\n", err: "" });
    expect((await expiries([f.active])).get(f.active)! - was.get(f.active)!).toBe(2 * DAY_MS);

    for (const days of ["0", "91"]) {
      const r = await cli(["keys:compensate", "Cli Comp", days]);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`error: days must be a whole number from 1 to 90, got "${days}"`);
    }
    const unknown = await cli(["keys:compensate", "No Such Product", "2"]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain("error: Продукт «No Such Product» не найден");
    expect((await expiries([f.active])).get(f.active)! - was.get(f.active)!).toBe(2 * DAY_MS);
  });

  test("compensating more keys than are named one by one still reaches every process's memory within a second", async () => {
    const product = await ensureProduct(t, "Big Comp");
    await t.sql`
      insert into keys (product_id, days, key, state, gift, sold_at, hwid, activated_at, expires_at)
      select ${product.id}, 30, 'BIG-' || i, 'sold', true, now(), 'PC-1', now(), now() + interval '10 days'
      from generate_series(1, 1001) as i`;
    // Another process, in miniature: its own auth cache, following the announcements through Redis.
    const cache = new RedisCache(t.redisUrl, t.redisPrefix);
    await cache.ready(2_000);
    const peer = createShop({ sql: t.sql, cache, config: t.config });
    const stopFollowing = await followChanges(peer);
    try {
      const ask = () => peer.licence.authenticate({ product: "Big Comp", key: "BIG-500", hwid: "PC-1", ip: null });
      const before = await ask();
      expect(before.ok).toBe(true);
      expect(peer.authCache.size).toBe(1);
      expect(await t.shop.keys.compensate(product.id, 1)).toBe(1001);
      const ms = await eventually(async () => {
        const now = await ask();
        return now.ok && before.ok && now.expiresAt.getTime() - before.expiresAt.getTime() === DAY_MS;
      }, 1_000);
      console.info(`the other process answered the new expiry after ${Math.round(ms)} ms`);
    } finally {
      await stopFollowing();
      await cache.close();
    }
  });
});
