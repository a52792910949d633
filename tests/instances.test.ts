/**
 * Several app processes as `setup.sh --instances N` runs them (`bun src/main.ts`, each on its own port, one database,
 * one Redis): what one of them changes, every other obeys — a key banned in the panel of one is refused by the
 * other within a second, though that other answered it from its memory a moment before — and exactly one of them
 * polls Telegram.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { FakeTelegram, TEST_TOKEN } from "./helpers/fake-telegram.ts";
import { eventually, KEY_BANNED, soldKey } from "./helpers/licence.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { type Started, shopProcesses } from "./helpers/process.ts";
import { freePort } from "./helpers/servers.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

setDefaultTimeout(60_000);

const PRODUCT = "Instances";
const POLLS = /this instance receives the bot's updates/;

let t: TestShop;
let tg: FakeTelegram;
const shops = shopProcesses(() => ({
  DATABASE_URL: t.databaseUrl,
  REDIS_URL: t.redisUrl,
  REDIS_PREFIX: t.redisPrefix,
  SESSION_SECRET: "instances-test-session-secret-0123456789",
  TELEGRAM_API_URL: tg.url,
  DATA_DIR: t.config.dataDir,
  // Every check of this test comes from 127.0.0.1.
  AUTH_LIMIT_PER_IP: "1000000",
  AUTH_LIMIT_PER_KEY: "1000000",
}));
const ports = [freePort(), freePort()];
let processes: Started[];

beforeAll(async () => {
  tg = new FakeTelegram([TEST_TOKEN]).start();
  t = await createTestShop({ telegramApiUrl: tg.url });
  await t.shop.settings.update({ botToken: TEST_TOKEN, botEnabled: true });
  processes = ports.map((port) => shops.start(port));
  await Promise.all(processes.map((p) => p.waitFor(/"msg":"http listening"/, 30_000)));
});

afterAll(async () => {
  await shops.killAll();
  await t.close();
  await tg.stop();
});

const base = (port: number) => `http://127.0.0.1:${port}/Morpheus%20Private`;

async function check(port: number, key: string) {
  const res = await fetch(`${base(port)}/api/${PRODUCT}/auth?key=${key}&uuid=PC-1`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test("a key banned in the panel of one process is refused by the other within a second", async () => {
  const key = await soldKey(t, PRODUCT);
  const [a, b] = ports as [number, number];
  // Activated through A, then asked of B twice: B now answers it from its memory.
  expect((await check(a, key)).status).toBe(200);
  expect((await check(b, key)).status).toBe(200);
  expect((await check(b, key)).status).toBe(200);

  const { password } = await t.shop.accounts.reset("owner");
  const panel = new PanelClient({
    config: t.config,
    request: (path, init) => fetch(`${base(a)}${path}`, { ...init, redirect: "manual" }),
  });
  expect((await panel.login("owner", password)).status).toBe(303);
  // The session's own CSRF token, from a page of the panel.
  await panel.page("/");
  const product = (await t.shop.products.byName(PRODUCT))!;
  const [row] = await t.sql<{ id: number }[]>`select id from keys where key = ${key}`;
  const banned = await panel.post(`/products/${product.id}/keys/${row!.id}/ban`, {}, { htmx: true });
  expect(banned.status).toBe(200);
  expect(await banned.text()).toContain("Ключ забанен.");

  const ms = await eventually(async () => (await check(b, key)).status === 403, 1_000);
  expect(await check(b, key)).toEqual(KEY_BANNED);
  expect(await check(a, key)).toEqual(KEY_BANNED);
  console.info(`the other process refused the banned key after ${Math.round(ms)} ms`);
});

test("of the processes exactly one polls Telegram", async () => {
  const polls = (p: Started) => [...p.stdout, ...p.stderr].some((line) => POLLS.test(line));
  await eventually(async () => processes.some(polls), 15_000);
  // The other had its chance: it checks the lock at its start and every few seconds.
  await Bun.sleep(1_500);
  expect(processes.filter(polls).length).toBe(1);
  // Telegram answers a second getUpdates at the same time with 409: there was none.
  expect(tg.conflicts).toBe(0);
});

test("Caddy's probe of each process (healthz?scope=process) answers 200 and leaves no line in the log", async () => {
  const [a] = ports as [number, number];
  const probe = await fetch(`${base(a)}/healthz?scope=process`);
  expect(probe.status).toBe(200);
  expect(await probe.json()).toMatchObject({ ok: true, postgres: "ok", redis: "ok" });
  // A monitor's plain healthz still gets its line: it is the one line below.
  expect((await fetch(`${base(a)}/healthz`)).status).toBe(200);
  const logged = () =>
    processes[0]!.stdout.filter((line) => line.includes('"msg":"request"') && line.includes("/healthz"));
  await eventually(async () => logged().length > 0, 5_000);
  await Bun.sleep(200);
  expect(logged().length).toBe(1);
});
