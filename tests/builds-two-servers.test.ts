/**
 * Two servers (docs/scaling.md): app processes with DATA_DIRs of their own, one database, one Redis. A build uploaded
 * through the panel of one is delivered by the other, which has never seen the file: builds live in PostgreSQL, and
 * each process keeps a copy fetched from there. The first server is gone, its data dir with it, when the buyer pays.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdir, rm } from "node:fs/promises";
import { AnypayNotifier } from "./helpers/anypay.ts";
import { FakeTelegram, TEST_TOKEN } from "./helpers/fake-telegram.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { type Started, shopProcesses } from "./helpers/process.ts";
import { freePort } from "./helpers/servers.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

setDefaultTimeout(90_000);

const PRODUCT = "Two Servers";
const MERCHANT = "10001";
const SECRET = "two-servers-secret";
const BUYER = 424_242;
// A zip's first bytes, then 3 MiB and a little of noise: several chunks in the database, the last one short.
const BUILD = new Uint8Array(3 * 1024 * 1024 + 1234);
BUILD.set([0x50, 0x4b, 0x03, 0x04]);
for (let i = 4; i < BUILD.length; i++) BUILD[i] = (i * 2654435761) >>> 24;

let t: TestShop;
let tg: FakeTelegram;
let dataDir = "";
const shops = shopProcesses(() => ({
  DATABASE_URL: t.databaseUrl,
  REDIS_URL: t.redisUrl,
  REDIS_PREFIX: t.redisPrefix,
  SESSION_SECRET: "two-servers-test-session-secret-0123456789",
  TELEGRAM_API_URL: tg.url,
  DATA_DIR: dataDir,
}));
const dirs = () => ({ a: `${t.config.dataDir}-server-a`, b: `${t.config.dataDir}-server-b` });

beforeAll(async () => {
  tg = new FakeTelegram([TEST_TOKEN]).start();
  t = await createTestShop({ telegramApiUrl: tg.url });
  const product = await t.shop.products.create({ name: PRODUCT });
  await t.shop.products.setPrice(product.id, 30, 1999);
  await t.shop.keys.generate(product.id, 30, 1);
  await t.shop.users.touch({ id: BUYER, firstName: "Buyer" });
  await t.shop.settings.update({ botToken: TEST_TOKEN, anypayMerchantId: MERCHANT, anypaySecretKey: SECRET });
});

afterAll(async () => {
  await shops.killAll();
  await t.close();
  await tg.stop();
  for (const dir of Object.values(dirs())) await rm(dir, { recursive: true, force: true });
});

const base = (port: number) => `http://127.0.0.1:${port}/Morpheus%20Private`;

async function startServer(dir: string): Promise<{ port: number; started: Started }> {
  dataDir = dir;
  const port = freePort();
  const started = shops.start(port);
  await started.waitFor(/"msg":"http listening"/, 30_000);
  return { port, started };
}

test("a build uploaded through one server is delivered by another with its own DATA_DIR", async () => {
  const { a, b } = dirs();
  const serverA = await startServer(a);
  const serverB = await startServer(b);
  const product = (await t.shop.products.byName(PRODUCT))!;

  // The owner uploads the zip in server A's panel.
  const { password } = await t.shop.accounts.reset("owner");
  const panel = new PanelClient({
    config: t.config,
    request: (path, init) => fetch(`${base(serverA.port)}${path}`, { ...init, redirect: "manual" }),
  });
  expect((await panel.login("owner", password)).status).toBe(303);
  await panel.page("/");
  const uploaded = await panel.post(
    `/products/${product.id}/build`,
    { build: new File([BUILD], "Loader.zip") },
    { htmx: true },
  );
  expect(uploaded.status).toBe(200);
  const sha256 = createHash("sha256").update(BUILD).digest("hex");
  expect((await t.shop.products.byId(product.id))!.build).toMatchObject({ size: BUILD.length, sha256 });
  expect(await readdir(`${b}/builds`).catch(() => [])).toEqual([]);

  // Server A goes away with its disk; the buyer pays, and AnyPay's notification reaches server B.
  serverA.started.proc.kill("SIGKILL");
  await serverA.started.proc.exited;
  await rm(a, { recursive: true, force: true });
  const placed = await t.shop.orders.place({ userId: BUYER, productId: product.id, days: 30 });
  if (placed.kind !== "placed") throw new Error(placed.kind);
  const notifier = new AnypayNotifier(`${base(serverB.port)}/payments/anypay`, MERCHANT, SECRET);
  expect(await notifier.send(notifier.paid(placed.order))).toMatchObject({ status: 200, body: "OK" });

  const sent = await tg.waitFor((calls) => calls.find((c) => c.method === "sendDocument"), 20_000);
  expect(Number(sent.params.chat_id)).toBe(BUYER);
  expect(sent.files.document).toMatchObject({ name: "Loader.zip", size: BUILD.length, sha256 });
  const [sold] = await t.sql<
    { key: string }[]
  >`select key from keys where product_id = ${product.id} and state = 'sold'`;
  expect(String(sent.params.caption)).toContain(sold!.key);
  // B delivered it from its own copy, fetched from the database.
  const copies = await readdir(`${b}/builds`);
  expect(copies).toHaveLength(1);
  expect(copies[0]).toEndWith(".zip");
  expect(
    createHash("sha256")
      .update(await Bun.file(`${b}/builds/${copies[0]}`).bytes())
      .digest("hex"),
  ).toBe(sha256);
  expect(serverB.started.stdout.some((line) => line.includes("build copied from the database"))).toBe(true);
});

test("a build recorded before builds were kept in the database is put there from the disk it is on", async () => {
  const product = await t.shop.products.create({ name: "Older Build" });
  const stored = await t.shop.builds.store(product.id, BUILD, "old.zip");
  // As a build uploaded by an older version was: on this server's disk only.
  const name = stored.path.split("/").pop()!;
  await t.sql`delete from build_chunks where build = ${name}`;
  expect(await t.shop.builds.adoptLocalFiles()).toBe(1);
  const [row] = await t.sql<{ chunks: number; bytes: number }[]>`
    select count(*)::int as chunks, sum(length(data))::int as bytes from build_chunks where build = ${name}`;
  expect(row).toEqual({ chunks: 4, bytes: BUILD.length });
  // Done once: the next start finds nothing left to adopt.
  expect(await t.shop.builds.adoptLocalFiles()).toBe(0);
});
