import { afterAll, beforeAll, describe, expect, setDefaultTimeout, spyOn, test } from "bun:test";
import { Redis } from "ioredis";
import { flushRequestTally } from "../src/http/request-log.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { AuthCache } from "../src/shop/licence/licence.ts";
import {
  auth,
  ensureProduct,
  HWID_MISMATCH,
  KEY_BANNED,
  KEY_EXPIRED,
  KEY_MISMATCH,
  PRODUCT_NOT_FOUND,
  soldKey,
} from "./helpers/licence.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

let t: TestShop;
const P = "Stalcraft";

beforeAll(async () => {
  t = await createTestShop();
  await ensureProduct(t, P);
});
afterAll(async () => {
  await t.close();
});

async function row(key: string) {
  const [r] = await t.sql<
    { hwid: string | null; activated_at: Date | null; expires_at: Date | null; last_auth_at: Date | null }[]
  >`select hwid, activated_at, expires_at, last_auth_at from keys where key = ${key}`;
  return r!;
}

/** A GET sent byte for byte as written (no client-side URL normalisation); the answer's status and body. */
async function rawGet(port: number, target: string): Promise<{ status: number; body: string }> {
  const chunks: Uint8Array[] = [];
  const closed = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data: (_s, data) => void chunks.push(new Uint8Array(data)),
      close: () => closed.resolve(),
      error: (_s, error) => closed.reject(error),
    },
  });
  socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  await closed.promise;
  const text = Buffer.concat(chunks).toString("utf8");
  const [head = "", body = ""] = text.split("\r\n\r\n", 2);
  return { status: Number(head.split(" ")[1]), body };
}

describe("the auth table of docs/licence-api.md#the-answers", () => {
  test("first activation binds the HWID and starts the clock: a 1-day key answers 0 days 23 hours", async () => {
    const key = await soldKey(t, P, 1);
    const r = await auth(t, P, { key, uuid: "PC-1" });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ success: true, message: "OK", days: 0, hours: 23 });
    expect(Object.keys(r.body).sort()).toEqual(["days", "expires_at", "hours", "message", "success"]);
    const expires = new Date(r.body.expires_at as string);
    expect(r.body.expires_at).toBe(expires.toISOString());
    expect(Math.abs(expires.getTime() - (Date.now() + 86_400_000))).toBeLessThan(10_000);
    const stored = await row(key);
    expect(stored.hwid).toBe("PC-1");
    expect(stored.expires_at!.getTime()).toBe(expires.getTime());
  });

  test("a 30-day key answers 29 days 23 hours on activation", async () => {
    const key = await soldKey(t, P, 30);
    const r = await auth(t, P, { key, uuid: "PC-30" });
    expect(r).toMatchObject({ status: 200, body: { success: true, days: 29, hours: 23 } });
  });

  test("the same PC again: 200 with the same expiry, and nothing is written", async () => {
    const key = await soldKey(t, P, 7);
    const first = await auth(t, P, { key, uuid: "PC-A" });
    const before = await t.sql`select xmin::text as v from keys where key = ${key}`;
    for (let i = 0; i < 30; i++) {
      const again = await auth(t, P, { key, uuid: "PC-A" });
      expect(again.status).toBe(200);
      expect(again.body.expires_at).toBe(first.body.expires_at);
    }
    // xmin changes with every update of the row: the hot path did not write.
    const after = await t.sql`select xmin::text as v from keys where key = ${key}`;
    expect(after[0]!.v).toBe(before[0]!.v);
  });

  test("a key asked again after five minutes is stamped «last seen», batched within a second", async () => {
    // One after another: soldKey swaps rows around and is not safe to run concurrently.
    const keys: string[] = [];
    for (let i = 0; i < 3; i++) keys.push(await soldKey(t, P, 7));
    for (const key of keys) await auth(t, P, { key, uuid: `PC-${key}` });
    await t.sql`update keys set last_auth_at = now() - interval '10 minutes', last_auth_ip = 'old' where key = any(${keys})`;
    t.shop.authCache.clear();
    const before = Date.now();
    for (const key of keys) expect((await auth(t, P, { key, uuid: `PC-${key}` })).status).toBe(200);
    // Written with the others within a second (flush is what the timer and shutdown run).
    await t.shop.licence.flush();
    const rows = await t.sql<{ last_auth_at: Date; last_auth_ip: string }[]>`
      select last_auth_at, last_auth_ip from keys where key = any(${keys})`;
    for (const r of rows) {
      expect(r.last_auth_ip).not.toBe("old");
      expect(r.last_auth_at.getTime()).toBeGreaterThanOrEqual(before - 1_000);
    }
  });

  test("another PC: 403 HWID mismatch, and the binding stays", async () => {
    const key = await soldKey(t, P);
    await auth(t, P, { key, uuid: "PC-A" });
    expect(await auth(t, P, { key, uuid: "PC-B" })).toEqual(HWID_MISMATCH);
    expect((await row(key)).hwid).toBe("PC-A");
  });

  test("after an HWID reset the next PC binds and the expiry is not extended", async () => {
    const key = await soldKey(t, P, 7);
    const first = await auth(t, P, { key, uuid: "OLD-PC" });
    const expiresBefore = (await row(key)).expires_at!.getTime();
    await Bun.sleep(20);
    await t.shop.keys.resetHwid({ key });
    expect((await row(key)).hwid).toBeNull();
    const r = await auth(t, P, { key, uuid: "NEW-PC" });
    expect(r.status).toBe(200);
    expect(r.body.expires_at).toBe(first.body.expires_at);
    const after = await row(key);
    expect(after.hwid).toBe("NEW-PC");
    expect(after.expires_at!.getTime()).toBe(expiresBefore);
    expect(await auth(t, P, { key, uuid: "OLD-PC" })).toEqual(HWID_MISMATCH);
  });

  test("unknown key: 403 Key mismatch", async () => {
    expect(await auth(t, P, { key: "MPH-00000-00000-00000", uuid: "PC" })).toEqual(KEY_MISMATCH);
  });

  test("an unsold key: 403 Key mismatch, and it stays unsold and unbound", async () => {
    const p = await ensureProduct(t, P);
    const [key] = await t.shop.keys.generate(p.id, 14, 1);
    expect(await auth(t, P, { key, uuid: "PC" })).toEqual(KEY_MISMATCH);
    const [r] = await t.sql`select state, hwid from keys where key = ${key!}`;
    expect(r).toEqual({ state: "available", hwid: null });
  });

  test("a key reserved for an unpaid order: 403 Key mismatch", async () => {
    const p = await ensureProduct(t, P);
    const [key] = await t.shop.keys.generate(p.id, 90, 1);
    await t.sql`insert into bot_users (telegram_id) values (777) on conflict do nothing`;
    const [order] = await t.sql`
      insert into orders (user_id, product_id, days, amount_rub, reserved_until)
      values (777, ${p.id}, 90, 100, now() + interval '30 minutes') returning id`;
    await t.sql`update keys set state = 'reserved', order_id = ${order!.id} where key = ${key!}`;
    expect(await auth(t, P, { key, uuid: "PC" })).toEqual(KEY_MISMATCH);
  });

  test("a deleted key: 403 Key mismatch", async () => {
    const p = await ensureProduct(t, P);
    const [key] = await t.shop.keys.generate(p.id, 14, 1);
    await t.shop.keys.remove({ key: key! });
    expect(await auth(t, P, { key, uuid: "PC" })).toEqual(KEY_MISMATCH);
  });

  test("a key of product A sent to product B's API: 403 Key mismatch, and A's key stays unactivated", async () => {
    await ensureProduct(t, "Other Game");
    const key = await soldKey(t, P);
    expect(await auth(t, "Other Game", { key, uuid: "PC" })).toEqual(KEY_MISMATCH);
    expect((await row(key)).hwid).toBeNull();
    expect((await auth(t, P, { key, uuid: "PC" })).status).toBe(200);
    // Once activated (and cached) under A, it is still refused under B.
    expect(await auth(t, "Other Game", { key, uuid: "PC" })).toEqual(KEY_MISMATCH);
  });

  test("expired: 403 Key expired, also for its own PC and after an HWID reset", async () => {
    const key = await soldKey(t, P);
    await auth(t, P, { key, uuid: "PC" });
    await t.sql`
      update keys set activated_at = now() - interval '2 days', expires_at = now() - interval '1 second'
      where key = ${key}`;
    t.shop.authCache.clear();
    expect(await auth(t, P, { key, uuid: "PC" })).toEqual(KEY_EXPIRED);
    await t.shop.keys.resetHwid({ key });
    expect(await auth(t, P, { key, uuid: "NEW" })).toEqual(KEY_EXPIRED);
    expect((await row(key)).hwid).toBeNull();
  });

  test("a key that expires while cached is refused from the moment it expires", async () => {
    const key = await soldKey(t, P);
    await auth(t, P, { key, uuid: "PC" });
    // A second of margin: on a loaded machine the update and the first call can take a few hundred ms.
    const [updated] = await t.sql<{ expires_at: Date }[]>`
      update keys set expires_at = now() + interval '1 second' where key = ${key} returning expires_at`;
    const expiresAt = updated!.expires_at;
    t.shop.authCache.clear();
    expect((await auth(t, P, { key, uuid: "PC" })).status).toBe(200);
    expect(t.shop.authCache.get(P, key)).not.toBeNull();
    await Bun.sleep(Math.max(0, expiresAt.getTime() - Date.now() + 20));
    expect(await auth(t, P, { key, uuid: "PC" })).toEqual(KEY_EXPIRED);
  });

  test("banned: 403 Key banned for its own PC at once; unbanned, it answers again", async () => {
    const key = await soldKey(t, P);
    await auth(t, P, { key, uuid: "PC" });
    await auth(t, P, { key, uuid: "PC" });
    expect(t.shop.authCache.get(P, key)).not.toBeNull();
    await t.shop.keys.setBanned({ key }, true);
    expect(await auth(t, P, { key, uuid: "PC" })).toEqual(KEY_BANNED);
    expect(await auth(t, P, { key, uuid: "OTHER" })).toEqual(KEY_BANNED);
    await t.shop.keys.setBanned({ key }, false);
    expect((await auth(t, P, { key, uuid: "PC" })).status).toBe(200);
  });

  test("a key banned before its first activation is refused and stays unbound", async () => {
    const key = await soldKey(t, P);
    await t.shop.keys.setBanned({ key }, true);
    expect(await auth(t, P, { key, uuid: "PC" })).toEqual(KEY_BANNED);
    expect((await row(key)).hwid).toBeNull();
  });

  test("an HWID reset takes effect at once although the answer was cached", async () => {
    const key = await soldKey(t, P);
    await auth(t, P, { key, uuid: "PC-1" });
    expect(await auth(t, P, { key, uuid: "PC-2" })).toEqual(HWID_MISMATCH);
    expect(t.shop.authCache.get(P, key)?.hwid).toBe("PC-1");
    await t.shop.keys.resetHwid({ key });
    expect((await auth(t, P, { key, uuid: "PC-2" })).status).toBe(200);
    expect(await auth(t, P, { key, uuid: "PC-1" })).toEqual(HWID_MISMATCH);
  });

  test("an extension is answered at once although the answer was cached", async () => {
    const key = await soldKey(t, P);
    const first = await auth(t, P, { key, uuid: "PC" });
    expect(first.body).toMatchObject({ days: 0, hours: 23 });
    await t.shop.keys.extend({ key }, 7);
    expect((await auth(t, P, { key, uuid: "PC" })).body).toMatchObject({ days: 7, hours: 23 });
  });

  test("unknown product: 404 Product not found (also for names no product can have)", async () => {
    expect(await auth(t, "Nope", { key: "x", uuid: "y" })).toEqual(PRODUCT_NOT_FOUND);
    expect(await auth(t, "x".repeat(65), { key: "x", uuid: "y" })).toEqual(PRODUCT_NOT_FOUND);
    expect(await auth(t, "a/b", { key: "x", uuid: "y" })).toEqual(PRODUCT_NOT_FOUND);
    // The product segment is matched exactly: no case folding, no trimming.
    expect(await auth(t, P.toLowerCase(), { key: "x", uuid: "y" })).toEqual(PRODUCT_NOT_FOUND);
  });
});

describe("the race of first activations", () => {
  test("20 PCs activating one key at once: exactly one binds, 19 get HWID mismatch", async () => {
    const key = await soldKey(t, P, 7);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => auth(t, P, { key, uuid: `RACER-${i}` })));
    const winners = answers.filter((a) => a.status === 200);
    expect(winners).toHaveLength(1);
    expect(answers.filter((a) => a.status === 403 && a.body.message === "HWID mismatch")).toHaveLength(19);
    const winner = answers.findIndex((a) => a.status === 200);
    expect((await row(key)).hwid).toBe(`RACER-${winner}`);
  });

  test("the same PC sending its first activation twice at once gets 200 both times", async () => {
    const key = await soldKey(t, P);
    const [a, b] = await Promise.all([auth(t, P, { key, uuid: "SAME" }), auth(t, P, { key, uuid: "SAME" })]);
    expect([a!.status, b!.status]).toEqual([200, 200]);
    expect(a!.body.expires_at).toBe(b!.body.expires_at);
  });
});

describe("how loaders may call", () => {
  const NAME = "Мой Продукт 2";
  const encoded = "%D0%9C%D0%BE%D0%B9%20%D0%9F%D1%80%D0%BE%D0%B4%D1%83%D0%BA%D1%82%202";

  test("a product name with a space and Cyrillic letters, percent-encoded in the URL", async () => {
    const key = await soldKey(t, NAME);
    const res = await t.request(`/api/${encoded}/auth?key=${key}&uuid=PC`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { success: boolean }).success).toBe(true);
  });

  test("a HWID in Cyrillic (a machine name) binds like any other printable text", async () => {
    const key = await soldKey(t, P);
    expect((await auth(t, P, { key, uuid: "ПК-Бухгалтерия" })).status).toBe(200);
    expect((await row(key)).hwid).toBe("ПК-Бухгалтерия");
  });

  test("rate-limit counters in Redis are named by a digest, never by the licence key", async () => {
    const key = await soldKey(t, P);
    expect((await auth(t, P, { key, uuid: "PC-DIGEST" })).status).toBe(200);
    // The limiter sends its counts to Redis every 50 ms.
    const redis = new Redis(t.redisUrl);
    try {
      let names: string[] = [];
      for (let i = 0; i < 50 && !names.some((n) => n.includes("auth:key:")); i++) {
        await Bun.sleep(20);
        names = await redis.keys(`${t.redisPrefix}*`);
      }
      expect(names.some((n) => n.includes("auth:key:"))).toBe(true);
      expect(names.filter((n) => n.includes(key))).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });

  test("HEAD (a link checker) is refused with 405 and activates nothing; PUT and DELETE too", async () => {
    const key = await soldKey(t, P);
    const server = t.app.listen({ hostname: "127.0.0.1", port: 0 }).server!;
    try {
      const url = `http://127.0.0.1:${server.port}${encodeURI(t.config.basePath)}/api/${P}/auth?key=${key}&uuid=PC`;
      for (const method of ["HEAD", "PUT", "PATCH", "DELETE"]) {
        const res = await fetch(url, { method });
        expect(res.status).toBe(405);
        expect(res.headers.get("allow")).toBe("GET, POST");
      }
      const stored = await row(key);
      expect(stored.hwid).toBeNull();
      expect(stored.expires_at).toBeNull();
      // The key is still there for the loader's first real call.
      expect((await fetch(url)).status).toBe(200);
    } finally {
      await t.app.stop(true);
    }
  });

  test("GET with the query string", async () => {
    const key = await soldKey(t, P);
    const res = await t.request(`/api/${P}/auth?key=${encodeURIComponent(key)}&uuid=${encodeURIComponent("PC 1")}`);
    expect(res.status).toBe(200);
    expect((await row(key)).hwid).toBe("PC 1");
  });

  test("POST with a form body", async () => {
    const key = await soldKey(t, P);
    const res = await t.request(`/api/${P}/auth`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ key, uuid: "FORM-PC" }).toString(),
    });
    expect(res.status).toBe(200);
    expect((await row(key)).hwid).toBe("FORM-PC");
  });

  test("POST with a multipart form", async () => {
    const key = await soldKey(t, P);
    const form = new FormData();
    form.set("key", key);
    form.set("uuid", "MULTI-PC");
    const res = await t.request(`/api/${P}/auth`, { method: "POST", body: form });
    expect(res.status).toBe(200);
    expect((await row(key)).hwid).toBe("MULTI-PC");
  });

  test("`hwid` is accepted as an alias of `uuid` (uuid wins when both are sent)", async () => {
    const key = await soldKey(t, P);
    expect((await auth(t, P, { key, hwid: "ALIAS-PC" })).status).toBe(200);
    expect((await row(key)).hwid).toBe("ALIAS-PC");
    expect((await auth(t, P, { key, uuid: "ALIAS-PC", hwid: "ignored" })).status).toBe(200);
    expect(await auth(t, P, { key, uuid: "SOMEONE-ELSE", hwid: "ALIAS-PC" })).toEqual(HWID_MISMATCH);
  });

  test("JSON body fields win over the query string", async () => {
    const key = await soldKey(t, P);
    const res = await t.request(`/api/${P}/auth?key=nonsense&uuid=Q`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key, uuid: "BODY" }),
    });
    expect(res.status).toBe(200);
    expect((await row(key)).hwid).toBe("BODY");
  });

  test("over a real served port, with the client's address recorded", async () => {
    const key = await soldKey(t, NAME);
    const server = t.app.listen({ hostname: "127.0.0.1", port: 0 }).server!;
    try {
      const base = `http://127.0.0.1:${server.port}${encodeURI(t.config.basePath)}`;
      const post = await fetch(`${base}/api/${encoded}/auth`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key, uuid: "NET-PC" }),
      });
      expect(post.status).toBe(200);
      expect(post.headers.get("content-type")).toStartWith("application/json");
      expect(((await post.json()) as { success: boolean }).success).toBe(true);
      const get = await fetch(`${base}/api/${encoded}/auth?key=${key}&uuid=OTHER`);
      expect({ status: get.status, body: await get.json() }).toEqual(HWID_MISMATCH);
      const [r] = await t.sql`select last_auth_ip from keys where key = ${key}`;
      expect(r!.last_auth_ip).toBe("127.0.0.1");
      const bad = await fetch(`${base}/api/%E0%A4%A/auth?key=a&uuid=b`);
      expect(bad.status).toBe(400);
    } finally {
      await t.app.stop(true);
    }
  });
});

describe("bad input is a 400 with a reason, never a 500", () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["missing key", { uuid: "PC" }, /^Missing key$/],
    ["missing uuid", { key: "K" }, /^Missing uuid$/],
    ["empty key", { key: "", uuid: "PC" }, /^Invalid key/],
    ["empty uuid", { key: "K", uuid: "" }, /^Invalid uuid/],
    ["10 kB key", { key: "K".repeat(10_240), uuid: "PC" }, /^Invalid key: longer than 128/],
    ["10 kB uuid", { key: "K", uuid: "U".repeat(10_240) }, /^Invalid uuid: longer than 128/],
    ["129-character uuid", { key: "K", uuid: "U".repeat(129) }, /^Invalid uuid/],
    ["key that is a number", { key: 12345, uuid: "PC" }, /^Invalid key: must be a string/],
    ["uuid that is an object", { key: "K", uuid: { a: 1 } }, /^Invalid uuid: must be a string/],
    ["key with a space", { key: "A B", uuid: "PC" }, /^Invalid key/],
    ["uuid with a control character", { key: "K", uuid: "PC\n1" }, /^Invalid uuid/],
    ["uuid with a zero-width space", { key: "K", uuid: "PC\u200b1" }, /^Invalid uuid: contains non-printable/],
    ["uuid of spaces alone", { key: "K", uuid: "   " }, /^Invalid uuid: blank/],
  ];
  for (const [name, body, message] of cases) {
    test(name, async () => {
      const r = await auth(t, P, body);
      expect(r.status).toBe(400);
      expect(r.body.success).toBe(false);
      expect(r.body.message as string).toMatch(message);
    });
  }

  test("a 128-character key and uuid are still accepted as input (Key mismatch, not 400)", async () => {
    expect(await auth(t, P, { key: "K".repeat(128), uuid: "U".repeat(128) })).toEqual(KEY_MISMATCH);
  });

  test("nothing at all, by GET", async () => {
    const res = await t.request(`/api/${P}/auth`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ success: false, message: "Missing key" });
  });

  test("a 10 kB key in the query string", async () => {
    const res = await t.request(`/api/${P}/auth?key=${"K".repeat(10_240)}&uuid=PC`);
    expect(res.status).toBe(400);
  });

  test("malformed percent-encoding in the product segment", async () => {
    for (const segment of ["%E0%A4%A", "abc%", "%ZZ", "%D0"]) {
      const res = await t.request(`/api/${segment}/auth?key=K&uuid=PC`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { message: string }).message).toStartWith("Invalid product name in URL");
    }
  });

  test("a product segment with a control character (%00, %0A): 404 Product not found, not a database error", async () => {
    for (const segment of ["a%00b", "%0A", `${encodeURIComponent(P)}%00`, "%7F"]) {
      const res = await t.request(`/api/${segment}/auth?key=K&uuid=PC`);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ success: false, message: "Product not found" });
    }
  });

  test("malformed JSON, empty JSON and a JSON array: 400 JSON answers", async () => {
    for (const body of ["{not json", "", "[1,2]", "null", '"text"']) {
      const res = await t.request(`/api/${P}/auth`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      expect(res.status).toBe(400);
      expect(res.headers.get("content-type")).toStartWith("application/json");
      expect(await res.json()).toEqual({
        success: false,
        message: body === "{not json" || body === "" ? "Malformed request" : "Missing key",
      });
    }
  });

  test("`key` or `uuid` given twice in the query is refused like in a form, and nothing is activated", async () => {
    const key = await soldKey(t, P);
    for (const query of [`key=NOPE&key=${key}&uuid=PC`, `key=${key}&uuid=PC-1&uuid=PC-2`, `key=${key}&hwid=A&hwid=B`]) {
      const res = await t.request(`/api/${P}/auth?${query}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { message: string }).message).toMatch(/^Invalid (key|uuid): given more than once$/);
    }
    expect((await row(key)).hwid).toBeNull();
    // A JSON array is not a repetition, just not a string.
    expect((await auth(t, P, { key: [key, key], uuid: "PC" })).body.message).toBe("Invalid key: must be a string");
  });

  test("lengths are counted in characters (code points): 128 emoji are a valid uuid, 129 are too long", async () => {
    const key = await soldKey(t, P);
    const emoji = "😀".repeat(128);
    const r = await auth(t, P, { key, uuid: emoji });
    expect(r.status).toBe(200);
    expect((await row(key)).hwid).toBe(emoji);
    expect((await auth(t, P, { key, uuid: `${emoji}😀` })).body.message).toBe(
      "Invalid uuid: longer than 128 characters",
    );
    // A key is printable ASCII: 128 emoji are refused for what they are, not for a length they do not have.
    expect((await auth(t, P, { key: emoji, uuid: "PC" })).body.message).toBe(
      "Invalid key: contains spaces or non-printable characters",
    );
  });

  test("a product name of 64 emoji can be created, and its auth API finds it", async () => {
    const name = "🎮".repeat(64);
    const key = await soldKey(t, name);
    expect((await auth(t, name, { key, uuid: "PC" })).status).toBe(200);
    expect(await t.shop.products.create({ name: `${name}🎮` }).catch((e: Error) => e.message)).toBe(
      "Название длиннее 64 символов",
    );
  });

  test("a dot segment in place of the product is named as such, not as broken percent-encoding", async () => {
    const server = t.app.listen({ hostname: "127.0.0.1", port: 0 }).server!;
    try {
      // fetch() would resolve the dot segments itself: send the request line as a loader's HTTP library might.
      for (const segment of ["..", ".", "%2E%2E", "%2e", ".%2E"]) {
        const answer = await rawGet(server.port!, `${encodeURI(t.config.basePath)}/api/${segment}/auth?key=K&uuid=PC`);
        expect(answer.status).toBe(400);
        expect(JSON.parse(answer.body)).toEqual({
          success: false,
          message: "Invalid product name in URL: a dot segment (. or ..) is not a product name",
        });
      }
    } finally {
      await t.app.stop(true);
    }
  });

  test("a repeated field in a form is refused, not guessed", async () => {
    const res = await t.request(`/api/${P}/auth`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "key=A&key=B&uuid=PC",
    });
    expect(res.status).toBe(400);
  });
});

describe("operations", () => {
  test("loaders' calls are tallied per path and status in the log, other requests get a line each; never a key", async () => {
    const key = await soldKey(t, P);
    const lines: string[] = [];
    flushRequestTally(); // drops what earlier tests counted (the log level is "error": nothing is written)
    const out = spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(String(line)));
    const err = spyOn(console, "error").mockImplementation((line: unknown) => void lines.push(String(line)));
    setLogLevel("info");
    try {
      await t.request(`/api/${P}/auth?key=${key}&uuid=SECRET-HWID`);
      await auth(t, P, { key, uuid: "SECRET-HWID" });
      await auth(t, P, { key, uuid: "SECRET-HWID" });
      await auth(t, P, { key, uuid: "OTHER-SECRET-PC" });
      await t.request("/healthz");
      // A handler that answers with a Response of its own status (static files, Telegram's webhook): the line says it.
      expect((await t.request("/static/missing.js")).status).toBe(404);
      await Bun.sleep(20);
      expect(lines.filter((l) => l.includes('"requests"'))).toEqual([]);
      flushRequestTally();
    } finally {
      setLogLevel("error");
      out.mockRestore();
      err.mockRestore();
    }
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const path = `/Morpheus%20Private/api/${P}/auth`;
    const tallied = parsed.filter((l) => l.msg === "requests");
    expect(tallied).toHaveLength(3);
    expect(tallied).toContainEqual(expect.objectContaining({ method: "GET", path, status: 200, count: 1 }));
    expect(tallied).toContainEqual(expect.objectContaining({ method: "POST", path, status: 200, count: 2 }));
    expect(tallied).toContainEqual(expect.objectContaining({ method: "POST", path, status: 403, count: 1 }));
    for (const line of tallied) {
      expect(line.avgMs).toBeNumber();
      expect(line.maxMs).toBeNumber();
    }
    const single = parsed.filter((l) => l.msg === "request");
    expect(single).toEqual([
      expect.objectContaining({ method: "GET", path: "/Morpheus%20Private/healthz", status: 200 }),
      expect.objectContaining({ method: "GET", path: "/Morpheus%20Private/static/missing.js", status: 404 }),
    ]);
    expect(single[0]!.ms).toBeNumber();
    expect(lines.find((l) => l.includes("key activated"))).toBeDefined();
    for (const line of lines) {
      expect(line).not.toContain(key);
      expect(line).not.toContain("SECRET-HWID");
      expect(line).not.toContain("OTHER-SECRET-PC");
    }
  });

  test("calls for a flood of invented product names are tallied for 1 000 paths at most; the rest are counted together", async () => {
    flushRequestTally();
    const lines: string[] = [];
    const out = spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(String(line)));
    try {
      // Longer than any product name may be: refused without asking the database.
      for (let i = 0; i < 1_005; i++) await t.request(`/api/${"x".repeat(70)}${i}/auth?key=K&uuid=U`);
      await Bun.sleep(20);
      setLogLevel("info");
      flushRequestTally();
    } finally {
      setLogLevel("error");
      out.mockRestore();
    }
    const tallied = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === "requests");
    expect(tallied).toHaveLength(1_001);
    expect(tallied.reduce((sum, l) => sum + Number(l.count), 0)).toBe(1_005);
    expect(tallied).toContainEqual(expect.objectContaining({ path: "(other auth API paths)", status: 404, count: 5 }));
  });

  test("healthz reports Postgres and Redis", async () => {
    const res = await t.request("/healthz");
    expect(res.status).toBe(200);
    // The bot is switched off, as after installation (its states are tested in bot-status-panel.test.ts).
    expect(await res.json()).toEqual({ ok: true, postgres: "ok", redis: "ok", bot: "off" });
  });

  test("the auth cache refuses a row read before a concurrent change", () => {
    const cache = new AuthCache();
    const snapshot = {
      id: 1,
      state: "sold" as const,
      days: 1 as const,
      hwid: "PC",
      expiresAt: Date.now() + 60_000,
      bannedAt: null,
      lastAuthAt: null,
    };
    const before = cache.generation;
    cache.forget(["K"]);
    cache.put(P, "K", snapshot, before);
    expect(cache.get(P, "K")).toBeNull();
    cache.put(P, "K", snapshot, cache.generation);
    expect(cache.get(P, "K")).toMatchObject(snapshot);
    expect(cache.get("Other", "K")).toBeNull();
  });
});

describe("auth cache memory", () => {
  const snapshot = (id: number) => ({
    id,
    state: "sold" as const,
    days: 30 as const,
    hwid: `PC-${id}`,
    expiresAt: Date.now() + 60_000,
    bannedAt: null,
    lastAuthAt: null,
  });

  test("answers past their TTL are dropped as new ones come in, so the cache holds only what can still be used", async () => {
    const cache = new AuthCache(50, 1_000);
    for (let i = 0; i < 10; i++) cache.put(P, `OLD-${i}`, snapshot(i), cache.generation);
    expect(cache.size).toBe(10);
    await Bun.sleep(80);
    cache.put(P, "NEW", snapshot(99), cache.generation);
    expect(cache.size).toBe(1);
    expect(cache.get(P, "NEW")?.id).toBe(99);
    expect(cache.get(P, "OLD-3")).toBeNull();
  });

  test("a flood of distinct keys stops at the size limit, dropping the oldest answers", () => {
    const cache = new AuthCache(60_000, 100);
    for (let i = 0; i < 250; i++) cache.put(P, `K-${i}`, snapshot(i), cache.generation);
    expect(cache.size).toBeLessThanOrEqual(100);
    expect(cache.get(P, "K-249")?.id).toBe(249);
    expect(cache.get(P, "K-0")).toBeNull();
  });
});

describe("big bodies", () => {
  const TOO_LARGE = { success: false, message: "Request too large: key and uuid are at most 128 characters" };

  /** A body sent with Transfer-Encoding: chunked (no Content-Length), as a stream of `parts`. */
  function chunked(parts: string[]): ReadableStream<Uint8Array> {
    const encoder = new TextEncoder();
    return new ReadableStream({
      pull(controller) {
        const next = parts.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(encoder.encode(next));
      },
    });
  }

  test("a body over 16 kB is refused with 400 before it is parsed (served port), with or without a length", async () => {
    const server = t.app.listen({ hostname: "127.0.0.1", port: 0 }).server!;
    try {
      const url = `http://127.0.0.1:${server.port}${encodeURI(t.config.basePath)}/api/${P}/auth`;
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key: "K", uuid: "PC", padding: "x".repeat(100_000) }),
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual(TOO_LARGE);
      const form = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: `key=K&uuid=PC&padding=${"x".repeat(20_000)}`,
      });
      expect(form.status).toBe(400);
      // Streamed without a Content-Length: counted as it arrives, and cut off past the budget.
      let sent = 0;
      const endless = new ReadableStream<Uint8Array>({
        pull(controller) {
          sent += 4096;
          controller.enqueue(new Uint8Array(4096).fill(0x20));
          if (sent > 5_000_000) controller.close();
        },
      });
      const stream = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: endless,
      });
      expect(stream.status).toBe(400);
      expect(await stream.json()).toEqual(TOO_LARGE);
    } finally {
      await t.app.stop(true);
    }
  });

  test("a small chunked body is read like any other: JSON, a form, and garbage", async () => {
    const key = await soldKey(t, P);
    const server = t.app.listen({ hostname: "127.0.0.1", port: 0 }).server!;
    try {
      const url = `http://127.0.0.1:${server.port}${encodeURI(t.config.basePath)}/api/${P}/auth`;
      const json = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: chunked(['{"key":', JSON.stringify(key), ',"uuid":"PC-CHUNKED"}']),
      });
      expect(json.status).toBe(200);
      expect(await json.json()).toMatchObject({ success: true, message: "OK" });
      const form = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: chunked([`key=${encodeURIComponent(key)}&`, "uuid=PC-OTHER"]),
      });
      expect(form.status).toBe(403);
      expect(await form.json()).toEqual({ success: false, message: "HWID mismatch" });
      const garbage = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: chunked(["{not json"]),
      });
      expect(garbage.status).toBe(400);
      expect(await garbage.json()).toEqual({ success: false, message: "Malformed request" });
    } finally {
      await t.app.stop(true);
    }
  });
});
