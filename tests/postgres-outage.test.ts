import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { connectDatabase } from "../src/db/client.ts";
import { buildHttpApp } from "../src/server.ts";
import { followChanges } from "../src/shop/changes.ts";
import { createShop } from "../src/shop/index.ts";
import { AnypayNotifier } from "./helpers/anypay.ts";
import { ensureProduct, eventually, soldKey } from "./helpers/licence.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { createTestShop } from "./helpers/shop.ts";
import { TcpProxy } from "./helpers/tcp-proxy.ts";

// Reconnects take a few seconds: hang protection only.
setDefaultTimeout(30_000);

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

test("Postgres away mid-run: cached keys still answer, others get 503 JSON, healthz 503 (200 to the balancer's scope=process); all well once it is back", async () => {
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
  // Caddy's question when it balances several processes: this one still serves (the cached key above).
  expect(await call("/healthz?scope=process")).toEqual({
    status: 200,
    body: { ok: false, postgres: "down", redis: "ok", bot: "off" },
  });
  expect(await call("/healthz?scope=everything")).toEqual({
    status: 400,
    body: { success: false, message: "Malformed request" },
  });

  proxy.start();
  await eventually(async () => (await call("/healthz")).status === 200, 10_000);
  expect((await call(`/api/P/auth?key=${uncached}&uuid=PC`)).status).toBe(200);
});

test("Postgres away mid-run: the panel's login, dashboard and pages and AnyPay's notification answer 503; AnyPay's retry then pays once", async () => {
  const t = await createTestShop();
  cleanups.push(t.close);
  const { password } = await t.shop.accounts.reset("admin");
  await t.shop.settings.update({ anypayMerchantId: "51234", anypaySecretKey: "secret" });
  const product = await t.shop.products.create({ name: "Outage" });
  await t.shop.products.setPrice(product.id, 30, 990);
  await t.shop.keys.generate(product.id, 30, 1);
  await t.shop.users.touch({ id: 4001, firstName: "Buyer" });
  const placed = await t.shop.orders.place({ userId: 4001, productId: product.id, days: 30, expectedRub: 990 });
  if (placed.kind !== "placed") throw new Error(`order not placed: ${placed.kind}`);

  const proxy = new TcpProxy(Number(new URL(t.databaseUrl).port || 5432)).start();
  cleanups.push(() => proxy.cut());
  const url = new URL(t.databaseUrl);
  url.port = String(proxy.port);
  const sql = connectDatabase(url.toString(), { max: 4 });
  cleanups.push(() => sql.end({ timeout: 1 }));
  const shop = createShop({ sql, cache: t.cache, config: t.config });
  cleanups.push(await followChanges(shop));
  const app = buildHttpApp(shop, t.config);
  app.listen({ hostname: "127.0.0.1", port: 0 });
  cleanups.push(async () => {
    await app.stop(true);
  });
  const notifier = new AnypayNotifier(
    `http://127.0.0.1:${app.server!.port}/Morpheus%20Private/payments/anypay`,
    "51234",
    "secret",
  );
  const owner = new PanelClient({
    config: t.config,
    request: (path, init) => app.handle(new Request(`http://localhost/Morpheus%20Private${path}`, init)),
  });
  expect((await owner.login("admin", password)).status).toBe(303);
  expect((await owner.page("/")).status).toBe(200);
  const stranger = new PanelClient({
    config: t.config,
    request: (path, init) => app.handle(new Request(`http://localhost/Morpheus%20Private${path}`, init)),
  });
  await stranger.page("/");

  proxy.cut();
  const unavailable = "База данных сейчас недоступна";
  const login = await stranger.post("/login", { login: "admin", password });
  expect(login.status).toBe(503);
  expect(await login.text()).toContain(unavailable);
  const dashboard = await owner.get("/");
  expect(dashboard.status).toBe(503);
  expect(dashboard.headers.get("retry-after")).toBe("5");
  expect(await dashboard.text()).toContain(unavailable);
  const settings = await owner.get("/settings", { htmx: "partial" });
  expect(settings.status).toBe(503);
  expect(await settings.text()).toContain(unavailable);
  const order = { id: placed.order.id, amountRub: 990 };
  const sent = notifier.paid(order);
  const notification = await notifier.send(sent);
  expect(notification.status).toBe(503);
  expect(notification.body).not.toBe("OK");

  // Nothing was half done: once the database answers again (here the same shop reached directly), AnyPay's retry
  // of the very same notification pays the order, once.
  t.app.listen({ hostname: "127.0.0.1", port: 0 });
  cleanups.push(async () => {
    await t.app.stop(true);
  });
  expect(await t.shop.orders.byId(order.id)).toMatchObject({ status: "pending" });
  const retry = new AnypayNotifier(
    `http://127.0.0.1:${t.app.server!.port}/Morpheus%20Private/payments/anypay`,
    "51234",
    "secret",
  );
  expect((await retry.send(sent)).body).toBe("OK");
  expect((await retry.send(sent)).body).toBe("OK");
  expect((await t.shop.orders.byId(order.id))?.status).toBe("paid");
  const [payments] = await t.sql<{ n: number }[]>`select count(*)::int as n from payments where order_id = ${order.id}`;
  expect(payments!.n).toBe(1);
});
