import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { PanelClient } from "./helpers/panel-client.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

/** Hand-edited or hostile panel URLs: each is a clear 4xx or a normal page, never a 500 or a broken answer. */
let t: TestShop;
let c: PanelClient;
let productId: number;

const cursor = (key: string | null, id: string) => Buffer.from(JSON.stringify([key, id])).toString("base64url");

beforeAll(async () => {
  t = await createTestShop();
  const { password } = await t.shop.accounts.reset("admin");
  c = new PanelClient(t);
  await c.login("admin", password);
  await c.page("/");
  productId = (await t.shop.products.create({ name: "Malformed" })).id;
});
afterAll(async () => {
  await t.close();
});

describe("static files", () => {
  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
    test(`/static/${name} (a name on Object's prototype) is a plain 404`, async () => {
      const res = await t.request(`/static/${name}`);
      expect(res.status).toBe(404);
      expect(await res.text()).toBe("Not found");
    });
  }

  test("a real static file is still served", async () => {
    const res = await t.request("/static/htmx.min.js");
    expect(res.status).toBe(200);
    expect((await res.text()).length).toBeGreaterThan(1000);
  });
});

describe("page cursors", () => {
  const pages = () => [
    ["/users", "last_seen"],
    ["/users?sort=first_seen", "first_seen"],
    ["/users?sort=id", "id"],
    ["/orders", "orders"],
    [`/products/${productId}/keys?list=sold`, "sold keys"],
    [`/products/${productId}/keys?list=unsold`, "unsold keys"],
  ];
  const bad: [string, string | null, string][] = [
    ["an id beyond bigint", "2026-01-01 00:00:00+00", "9999999999999999999"],
    ["an id beyond bigint, no key", null, "9223372036854775808"],
    ["a 13th month", "2026-13-01 00:00:00+00", "5"],
    ["the 30th of February", "2026-02-30 00:00:00+00", "5"],
    ["hour 25", "2026-01-01 25:00:00+00", "5"],
    ["an offset of 99 hours", "2026-01-01 00:00:00+99", "5"],
  ];
  for (const [what, key, id] of bad) {
    test(`${what} reads as no cursor: the first page, 200`, async () => {
      for (const [path, name] of pages()) {
        const sep = path!.includes("?") ? "&" : "?";
        const res = await c.get(`${path}${sep}after=${cursor(key, id)}`);
        expect({ name, status: res.status }).toEqual({ name, status: 200 });
      }
    });
  }
});

describe("search text", () => {
  test("a NUL or other control character in a search is ignored, not a 500", async () => {
    for (const path of ["/users?q=%00ab", "/orders?q=%00", `/products/${productId}/keys?q=MPH%00-`]) {
      const res = await c.get(path);
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
    }
    const partial = await c.get(`/products/${productId}/keys?list=sold&q=%01%00`, { htmx: "partial" });
    expect(partial.status).toBe(200);
  });
});
