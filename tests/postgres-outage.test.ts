import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { connectDatabase } from "../src/db/client.ts";
import { buildHttpApp } from "../src/server.ts";
import { createShop, followChanges } from "../src/shop/index.ts";
import { ensureProduct, eventually, soldKey } from "./helpers/licence.ts";
import { createTestShop } from "./helpers/shop.ts";
import { TcpProxy } from "./helpers/tcp-proxy.ts";

// Reconnects take a few seconds: hang protection only.
setDefaultTimeout(30_000);

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

test("Postgres away mid-run: cached keys still answer, others get 503 JSON, healthz 503; all well once it is back", async () => {
  const t = await createTestShop();
  cleanups.push(t.close);
  await ensureProduct(t, "P");
  const cached = await soldKey(t, "P");
  const uncached = await soldKey(t, "P");

  // The app under test reaches Postgres through a proxy the test can cut.
  const proxy = new TcpProxy(Number(new URL(t.databaseUrl).port || 5432)).start();
  cleanups.push(() => proxy.cut());
  const url = new URL(t.databaseUrl);
  url.port = String(proxy.port);
  const sql = connectDatabase(url.toString(), { max: 4 });
  cleanups.push(() => sql.end({ timeout: 1 }));
  const shop = createShop({ sql, cache: t.cache, config: t.config });
  cleanups.push(await followChanges(shop));
  const app = buildHttpApp(shop, t.config);
  const call = async (path: string) => {
    const res = await app.handle(new Request(`http://localhost/Morpheus%20Private${path}`));
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  expect((await call(`/api/P/auth?key=${cached}&uuid=PC`)).status).toBe(200);
  expect((await call("/healthz")).status).toBe(200);

  proxy.cut();
  expect((await call(`/api/P/auth?key=${cached}&uuid=PC`)).status).toBe(200);
  expect(await call(`/api/P/auth?key=${uncached}&uuid=PC`)).toEqual({
    status: 503,
    body: { success: false, message: "Service temporarily unavailable" },
  });
  expect(await call("/healthz")).toEqual({
    status: 503,
    body: { ok: false, postgres: "down", redis: "ok", bot: "off" },
  });

  proxy.start();
  await eventually(async () => (await call("/healthz")).status === 200, 10_000);
  expect((await call(`/api/P/auth?key=${uncached}&uuid=PC`)).status).toBe(200);
});
