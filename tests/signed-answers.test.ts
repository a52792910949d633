import { afterAll, beforeAll, describe, expect, setDefaultTimeout, spyOn, test } from "bun:test";
import { createHash, createPublicKey } from "node:crypto";
import { connectDatabase } from "../src/db/client.ts";
import { buildHttpApp } from "../src/server.ts";
import { createShop } from "../src/shop/index.ts";
import { ensureProduct, soldKey } from "./helpers/licence.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";
import { type PublishedKey, type RawAnswer, rawAnswer, verifiedBy } from "./helpers/signatures.ts";
import { TcpProxy } from "./helpers/tcp-proxy.ts";

// Hang protection only: cloning a database and starting servers can take seconds on a loaded machine.
setDefaultTimeout(30_000);

/**
 * Signed licence answers (docs/licence-api.md#signed-answers) as a loader meets them: every answer carries X-Signature
 * over its exact bytes, verifiable with the key published at /api/public-key; with a nonce the answer repeats the
 * request; without one it is the old body byte for byte.
 */

const P = "Signed";
let t: TestShop;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  t = await createTestShop();
  await ensureProduct(t, P);
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await t.close();
});

async function publishedKeys(request = t.request): Promise<PublishedKey[]> {
  const res = await request("/api/public-key");
  expect(res.status).toBe(200);
  return ((await res.json()) as { keys: PublishedKey[] }).keys;
}

const post = async (body: Record<string, unknown>, product = P, request = t.request) =>
  rawAnswer(
    await request(`/api/${encodeURIComponent(product)}/auth`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
  );

const nonce = () => crypto.randomUUID().replaceAll("-", "");

describe("answers without a nonce: what old loaders read, byte for byte, now signed", () => {
  test("success and every refusal keep their exact bytes and carry a signature that verifies", async () => {
    const keys = await publishedKeys();
    expect(keys).toHaveLength(1);
    const key = await soldKey(t, P, 1);
    const banned = await soldKey(t, P, 7);
    await t.shop.keys.setBanned({ key: banned }, true);
    const cases: [RawAnswer, number, RegExp | string][] = [
      [
        await post({ key, uuid: "PC" }),
        200,
        /^\{"success":true,"message":"OK","days":0,"hours":23,"expires_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"\}$/,
      ],
      [await post({ key, uuid: "OTHER" }), 403, '{"success":false,"message":"HWID mismatch"}'],
      [await post({ key: "NOPE", uuid: "PC" }), 403, '{"success":false,"message":"Key mismatch"}'],
      [await post({ key: banned, uuid: "PC" }), 403, '{"success":false,"message":"Key banned"}'],
      [await post({ key, uuid: "PC" }, "Nope"), 404, '{"success":false,"message":"Product not found"}'],
      [await post({ uuid: "PC" }), 400, '{"success":false,"message":"Missing key"}'],
    ];
    for (const [answer, status, body] of cases) {
      expect(answer.status).toBe(status);
      if (typeof body === "string") expect(answer.text).toBe(body);
      else expect(answer.text).toMatch(body);
      expect(answer.headers.get("content-type")).toBe("application/json;charset=utf-8");
      expect(answer.signature).toMatch(/^[0-9a-f]{16}:[A-Za-z0-9+/]{86}==$/);
      expect(verifiedBy(answer.signature, answer.bytes, keys)).toEqual([keys[0]!.key_id]);
    }
  });

  test("one changed byte, and the signature no longer verifies", async () => {
    const keys = await publishedKeys();
    const answer = await post({ key: "NOPE", uuid: "PC" });
    const forged = new TextEncoder().encode(answer.text.replace("false", "true "));
    expect(forged.length).toBe(answer.bytes.length);
    expect(verifiedBy(answer.signature, forged, keys)).toEqual([]);
  });
});

describe("answers to a nonce", () => {
  test("a success repeats nonce, product, key and uuid, adds the server's time, and is signed", async () => {
    const keys = await publishedKeys();
    const key = await soldKey(t, P, 30);
    const n = nonce();
    const before = Date.now();
    const answer = await post({ key, uuid: "PC-N", nonce: n });
    expect(answer.status).toBe(200);
    const body = JSON.parse(answer.text) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual([
      "success",
      "message",
      "days",
      "hours",
      "expires_at",
      "nonce",
      "product",
      "key",
      "uuid",
      "server_time",
    ]);
    expect(body).toMatchObject({ success: true, days: 29, hours: 23, nonce: n, product: P, key, uuid: "PC-N" });
    const serverTime = new Date(body.server_time as string);
    expect(body.server_time).toBe(serverTime.toISOString());
    expect(serverTime.getTime()).toBeGreaterThanOrEqual(before - 1);
    expect(serverTime.getTime()).toBeLessThanOrEqual(Date.now() + 1);
    expect(verifiedBy(answer.signature, answer.bytes, keys)).toEqual([keys[0]!.key_id]);
  });

  test("every refusal repeats the request too: 403, 404, 400 (with null for what was not sent), 429", async () => {
    const keys = await publishedKeys();
    const n = nonce();
    const name = "Мой Продукт";
    await ensureProduct(t, name);
    const cases: [RawAnswer, number, Record<string, unknown>][] = [
      [
        await post({ key: "NOPE", hwid: "PC", nonce: n }, name),
        403,
        { message: "Key mismatch", product: name, key: "NOPE", uuid: "PC" },
      ],
      [
        await post({ key: "K", uuid: "PC", nonce: n }, "Nope"),
        404,
        { message: "Product not found", product: "Nope", key: "K", uuid: "PC" },
      ],
      [await post({ uuid: "PC", nonce: n }), 400, { message: "Missing key", product: P, key: null, uuid: "PC" }],
      [
        await post({ key: 12, uuid: "PC", nonce: n }),
        400,
        { message: "Invalid key: must be a string", product: P, key: null, uuid: "PC" },
      ],
    ];
    const limited = await createTestShop({ authLimitPerIp: 1 });
    cleanups.push(limited.close);
    await ensureProduct(limited, P);
    await post({ key: "A", uuid: "PC" }, P, limited.request);
    const tooMany = await post({ key: "B", uuid: "PC", nonce: n }, P, limited.request);
    expect(Number(tooMany.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    cases.push([tooMany, 429, { message: "Too many requests", product: P, key: "B", uuid: "PC" }]);
    for (const [answer, status, fields] of cases) {
      expect(answer.status).toBe(status);
      const body = JSON.parse(answer.text) as Record<string, unknown>;
      expect(body).toMatchObject({ success: false, nonce: n, ...fields });
      expect(Object.keys(body)).toEqual(["success", "message", "nonce", "product", "key", "uuid", "server_time"]);
      // Every test database is cloned from one template: `limited` signs with the same key.
      expect(verifiedBy(answer.signature, answer.bytes, keys)).toEqual([keys[0]!.key_id]);
    }
  });

  test("the nonce may come in a form or the query, like key and uuid", async () => {
    const keys = await publishedKeys();
    const key = await soldKey(t, P);
    const n = nonce();
    const form = await rawAnswer(
      await t.request(`/api/${P}/auth`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ key, uuid: "FORM", nonce: n }).toString(),
      }),
    );
    expect(JSON.parse(form.text)).toMatchObject({ success: true, nonce: n, key, uuid: "FORM" });
    expect(verifiedBy(form.signature, form.bytes, keys)).toHaveLength(1);
    const m = nonce();
    const query = await rawAnswer(await t.request(`/api/${P}/auth?key=${key}&uuid=FORM&nonce=${m}`));
    expect(JSON.parse(query.text)).toMatchObject({ success: true, nonce: m, key, uuid: "FORM" });
    expect(verifiedBy(query.signature, query.bytes, keys)).toHaveLength(1);
  });

  test("a malformed nonce is a 400, signed, and not repeated; nothing is activated", async () => {
    const keys = await publishedKeys();
    const key = await soldKey(t, P);
    const bad: [unknown, string][] = [
      ["short", "Invalid nonce: 16 to 128 characters of A-Z a-z 0-9 _ -"],
      ["x".repeat(129), "Invalid nonce: 16 to 128 characters of A-Z a-z 0-9 _ -"],
      ["has spaces in it, sixteen+", "Invalid nonce: 16 to 128 characters of A-Z a-z 0-9 _ -"],
      ["", "Invalid nonce: 16 to 128 characters of A-Z a-z 0-9 _ -"],
      [1234567890123456, "Invalid nonce: must be a string"],
    ];
    for (const [value, message] of bad) {
      const answer = await post({ key, uuid: "PC", nonce: value });
      expect(answer.status).toBe(400);
      expect(answer.text).toBe(JSON.stringify({ success: false, message }));
      expect(verifiedBy(answer.signature, answer.bytes, keys)).toHaveLength(1);
    }
    const twice = await rawAnswer(
      await t.request(`/api/${P}/auth?key=${key}&uuid=PC&nonce=${nonce()}&nonce=${nonce()}`),
    );
    expect(twice.text).toBe('{"success":false,"message":"Invalid nonce: given more than once"}');
    const [row] = await t.sql`select hwid from keys where key = ${key}`;
    expect(row!.hwid).toBeNull();
  });

  test("a body that does not parse: the nonce in the query is still repeated", async () => {
    const keys = await publishedKeys();
    const n = nonce();
    const answer = await rawAnswer(
      await t.request(`/api/${P}/auth?nonce=${n}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{not json",
      }),
    );
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text)).toMatchObject({ message: "Malformed request", nonce: n, product: P, key: null });
    expect(verifiedBy(answer.signature, answer.bytes, keys)).toHaveLength(1);
  });

  test("a body that does not parse, sent with its Content-Length as curl does: still signed", async () => {
    const keys = await publishedKeys();
    const server = t.app.listen({ hostname: "127.0.0.1", port: 0 }).server!;
    cleanups.push(async () => {
      await t.app.stop(true);
    });
    const n = nonce();
    const bodies: [string, string][] = [
      ["application/json", "{not json"],
      ["multipart/form-data; boundary=zz", "not a form"],
    ];
    for (const [type, body] of bodies) {
      // Over a real socket: the request carries Content-Length, and Bun's server, not a Request built here, reads it.
      const response = await fetch(
        `http://127.0.0.1:${server.port}${encodeURI(t.config.basePath)}/api/${P}/auth?nonce=${n}`,
        {
          method: "POST",
          headers: { "content-type": type, "content-length": String(Buffer.byteLength(body)) },
          body,
        },
      );
      const answer = await rawAnswer(response);
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.text)).toMatchObject({ message: "Malformed request", nonce: n, product: P });
      expect(verifiedBy(answer.signature, answer.bytes, keys)).toHaveLength(1);
    }
  });

  test("a bug on the auth path: a signed 500 that says nothing, and the error in the log", async () => {
    const keys = await publishedKeys();
    const key = await soldKey(t, P);
    // A shop of its own, whose verdict fails the way a bug would (not a lost database).
    const shop = createShop({ sql: t.sql, cache: t.cache, config: t.config });
    shop.licence.authenticate = () => {
      throw new TypeError("a bug");
    };
    const app = buildHttpApp(shop, t.config);
    const server = app.listen({ hostname: "127.0.0.1", port: 0 }).server!;
    cleanups.push(async () => {
      await app.stop(true);
    });
    const lines: string[] = [];
    const err = spyOn(console, "error").mockImplementation((line: unknown) => void lines.push(String(line)));
    let answer: RawAnswer;
    try {
      answer = await rawAnswer(
        await fetch(`http://127.0.0.1:${server.port}${encodeURI(t.config.basePath)}/api/${P}/auth`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ key, uuid: "PC" }),
        }),
      );
    } finally {
      err.mockRestore();
    }
    expect(answer.status).toBe(500);
    expect(answer.text).toBe('{"success":false,"message":"Internal error"}');
    expect(verifiedBy(answer.signature, answer.bytes, keys)).toHaveLength(1);
    expect(lines.join("\n")).toContain("a bug");
  });

  test("Postgres away: the 503 is signed and repeats the request", async () => {
    const key = await soldKey(t, P);
    const proxy = new TcpProxy(Number(new URL(t.databaseUrl).port || 5432)).start();
    cleanups.push(() => proxy.cut());
    const url = new URL(t.databaseUrl);
    url.port = String(proxy.port);
    const sql = connectDatabase(url.toString(), { max: 2 });
    cleanups.push(() => sql.end({ timeout: 1 }));
    const shop = createShop({ sql, cache: t.cache, config: t.config });
    const app = buildHttpApp(shop, t.config);
    const request = (path: string, init?: RequestInit) =>
      app.handle(new Request(`http://localhost${encodeURI(t.config.basePath)}${path}`, init));
    const keys = await publishedKeys(request);
    proxy.cut();
    const n = nonce();
    const answer = await post({ key, uuid: "PC", nonce: n }, P, request);
    expect(answer.status).toBe(503);
    expect(answer.headers.get("retry-after")).toBe("5");
    expect(JSON.parse(answer.text)).toMatchObject({ message: "Service temporarily unavailable", nonce: n, key });
    expect(verifiedBy(answer.signature, answer.bytes, keys)).toHaveLength(1);
  });
});

describe("the public key", () => {
  test("GET /api/public-key needs no login and gives the key id, raw key and PEM of each signing key", async () => {
    const keys = await publishedKeys();
    const [k] = keys;
    const raw32 = Buffer.from(k!.public_key, "base64");
    expect(raw32).toHaveLength(32);
    expect(k!.key_id).toBe(createHash("sha256").update(raw32).digest("hex").slice(0, 16));
    expect(k!.pem).toStartWith("-----BEGIN PUBLIC KEY-----\n");
    // The PEM is the same key as the raw bytes.
    const fromPem = createPublicKey(k!.pem).export({ format: "jwk" });
    expect(Buffer.from(fromPem.x!, "base64url").equals(raw32)).toBe(true);
    expect(new Date(k!.created_at).toISOString()).toBe(k!.created_at);
    const [row] = await t.sql<{ key_id: string }[]>`select key_id from signing_keys`;
    expect(row!.key_id).toBe(k!.key_id);
  });
});
