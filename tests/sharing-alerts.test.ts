/**
 * Sharing alerts (docs/panel.md#sharing-alerts) as production runs them: two app processes (`bun src/main.ts`, one
 * database, one Redis) answer the loaders, count the HWID mismatches in memory and write them once a second; one of
 * them polls the fake Bot API and handles the admins' buttons; both run the alerts job.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { RedisCache } from "../src/cache/cache.ts";
import { connectDatabase } from "../src/db/client.ts";
import { createShop } from "../src/shop/index.ts";
import { buttonsOf } from "./helpers/bot.ts";
import { FakeTelegram, type RecordedCall, TEST_TOKEN, type TgUser } from "./helpers/fake-telegram.ts";
import { eventually, HWID_MISMATCH, KEY_BANNED, soldKey } from "./helpers/licence.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { type Started, shopProcesses } from "./helpers/process.ts";
import { freePort } from "./helpers/servers.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

setDefaultTimeout(60_000);

const PRODUCT = "Sharing Продукт";
const ADMINS: TgUser[] = [
  { id: 700_001, first_name: "Анна", username: "anna_admin" },
  { id: 700_002, first_name: "Борис", username: "boris_admin" },
];
const STRANGER: TgUser = { id: 700_099, first_name: "Чужой", username: "not_an_admin" };
const ALERT = "Похоже, ключ передают";

let t: TestShop;
let tg: FakeTelegram;
const shops = shopProcesses(() => ({
  DATABASE_URL: t.databaseUrl,
  REDIS_URL: t.redisUrl,
  REDIS_PREFIX: t.redisPrefix,
  SESSION_SECRET: "sharing-test-session-secret-0123456789",
  TELEGRAM_API_URL: tg.url,
  PUBLIC_URL: "https://shop.example",
  DATA_DIR: t.config.dataDir,
  AUTH_LIMIT_PER_IP: "1000000",
  AUTH_LIMIT_PER_KEY: "1000000",
}));
const ports = [freePort(), freePort()] as const;
let processes: Started[];

beforeAll(async () => {
  tg = new FakeTelegram([TEST_TOKEN]).start();
  t = await createTestShop({ telegramApiUrl: tg.url });
  await t.shop.settings.update({ botToken: TEST_TOKEN, botEnabled: true });
  for (const admin of ADMINS) await t.shop.admins.add(admin.id);
  processes = ports.map((port) => shops.start(port));
  await Promise.all(processes.map((p) => p.waitFor(/"msg":"http listening"/, 30_000)));
  // The admins write to the bot once, as people do: the shop then knows their names.
  for (const admin of ADMINS) tg.sendText(TEST_TOKEN, admin, "/start");
  await eventually(
    async () => (await t.sql`select 1 from bot_users where telegram_id = ${ADMINS[1]!.id}`).length > 0,
    15_000,
  );
});

afterAll(async () => {
  await shops.killAll();
  await t.close();
  await tg.stop();
});

const base = (port: number) => `http://127.0.0.1:${port}/Morpheus%20Private`;

/** The licence check of one process, from a given address (X-Forwarded-For is not trusted here: the peer is). */
async function check(port: number, key: string, uuid: string) {
  const url = `${base(port)}/api/${encodeURIComponent(PRODUCT)}/auth?key=${key}&uuid=${encodeURIComponent(uuid)}`;
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const alertsTo = (chatId: number, key: string) =>
  tg
    .callsOf("sendMessage", chatId)
    .filter((c) => String(c.params.text).includes(ALERT) && String(c.params.text).includes(key));

async function keyIdOf(key: string): Promise<number> {
  const [row] = await t.sql<{ id: string }[]>`select id from keys where key = ${key}`;
  return Number(row!.id);
}

describe("a key used on three foreign PCs", () => {
  let key: string;
  let alert: RecordedCall;

  test("mismatches from three foreign PCs, seen by both processes, make exactly one alert per admin", async () => {
    key = await soldKey(t, PRODUCT, 30);
    const [a, b] = ports;
    expect((await check(a, key, "HOME-PC")).status).toBe(200);
    // Both processes see all three foreign PCs in the same second: both write, both look, one alert is raised.
    for (const port of [a, b]) {
      for (const uuid of ["PC-A", "PC-B", "PC-C"]) expect(await check(port, key, uuid)).toEqual(HWID_MISMATCH);
    }
    for (const admin of ADMINS) {
      await tg.waitFor(() => alertsTo(admin.id, key)[0], 10_000);
    }
    // More mismatches from a fourth PC within the period: counted, but no second alert.
    for (const port of [a, b]) expect(await check(port, key, "PC-D")).toEqual(HWID_MISMATCH);
    // Both processes have written (once a second) and polled their alert outbox (every 5 s) since.
    await Bun.sleep(6_000);
    for (const admin of ADMINS) expect(alertsTo(admin.id, key).length).toBe(1);
    const alerts = await t.sql`select uuids from sharing_alerts where key_id = ${await keyIdOf(key)}`;
    expect(alerts.length).toBe(1);
    expect(alerts[0]!.uuids).toBeGreaterThanOrEqual(3);

    alert = alertsTo(ADMINS[0]!.id, key)[0]!;
    const text = String(alert.params.text);
    expect(text).toContain(`Ключ: ${key}`);
    expect(text).toContain(`Товар: ${PRODUCT} 30 дней`);
    expect(text).toMatch(/За 24 ч: \d+ чужих ПК, \d+ отказ(а|ов)? «HWID mismatch»\./);
    expect(text).toContain("Привязан к ПК: HOME-PC");
    expect(text).toContain(`Страница ключа: https://shop.example/Morpheus%20Private/keys/${await keyIdOf(key)}`);
    expect(buttonsOf(alert).map((button) => button.text)).toEqual(["🚫 Забанить", "♻️ Сбросить HWID", "👌 Оставить"]);
  });

  test("a forged button from someone who is not an admin does nothing", async () => {
    const forged = buttonsOf(alert).find((button) => button.text.includes("Сбросить"))!.callback_data!;
    const from = tg.calls.length;
    tg.pressButton(TEST_TOKEN, STRANGER, forged, { message_id: 1 });
    const answer = await tg.waitFor(
      (calls) => calls.slice(from).find((c) => c.method === "answerCallbackQuery"),
      10_000,
    );
    expect(answer.params.text).toBe("Это действие доступно только администраторам.");
    const [row] = await t.sql`select hwid from keys where key = ${key}`;
    expect(row!.hwid).toBe("HOME-PC");
    expect((await t.sql`select 1 from sharing_alerts where resolution is not null`).length).toBe(0);
    expect((await check(ports[0], key, "HOME-PC")).status).toBe(200);
  });

  test("pressing «Забанить» bans the key in every process within a second, and every admin's copy says who did it", async () => {
    const [a, b] = ports;
    // Both processes answer the key from memory right before the press.
    expect((await check(a, key, "HOME-PC")).status).toBe(200);
    expect((await check(b, key, "HOME-PC")).status).toBe(200);
    const ban = buttonsOf(alert).find((button) => button.text.includes("Забанить"))!.callback_data!;
    const from = tg.calls.length;
    tg.pressButton(TEST_TOKEN, ADMINS[0]!, ban, {
      message_id: Number((alert.result as { message_id: number }).message_id),
    });
    const answer = await tg.waitFor(
      (calls) => calls.slice(from).find((c) => c.method === "answerCallbackQuery"),
      10_000,
    );
    expect(answer.params.text).toBe("Ключ забанен.");
    const ms = await eventually(
      async () => (await check(a, key, "HOME-PC")).status === 403 && (await check(b, key, "HOME-PC")).status === 403,
      1_000,
    );
    expect(await check(a, key, "HOME-PC")).toEqual(KEY_BANNED);
    expect(await check(b, key, "HOME-PC")).toEqual(KEY_BANNED);
    console.info(`both processes refused the banned key ${Math.round(ms)} ms after the press was answered`);

    for (const admin of ADMINS) {
      const sent = alertsTo(admin.id, key)[0]!;
      const edit = await tg.waitFor(
        (calls) =>
          calls.find(
            (c) =>
              c.method === "editMessageText" &&
              Number(c.params.chat_id) === admin.id &&
              Number(c.params.message_id) === (sent.result as { message_id: number }).message_id,
          ),
        10_000,
      );
      expect(String(edit.params.text)).toContain(`Ключ: ${key}`);
      expect(String(edit.params.text)).toMatch(
        /✅ Анна \(@anna_admin\): ключ забанен \(\d\d\.\d\d\.\d{4}, \d\d:\d\d МСК\)\.$/,
      );
      expect(buttonsOf(edit)).toEqual([]);
    }
  });

  test("a second admin pressing a stale button hears who decided, and nothing more happens", async () => {
    const reset = buttonsOf(alert).find((button) => button.text.includes("Сбросить"))!.callback_data!;
    const from = tg.calls.length;
    tg.pressButton(TEST_TOKEN, ADMINS[1]!, reset, { message_id: 1 });
    const answer = await tg.waitFor(
      (calls) => calls.slice(from).find((c) => c.method === "answerCallbackQuery"),
      10_000,
    );
    expect(answer.params.text).toBe("Уже решено: Анна (@anna_admin) — ключ забанен.");
    const [row] = await t.sql`select hwid, banned_at is not null as banned from keys where key = ${key}`;
    expect(row).toEqual({ hwid: "HOME-PC", banned: true });
  });

  test("the key page shows the activation, the mismatches per foreign PC, the alert and the ban with who did it", async () => {
    const { password } = await t.shop.accounts.reset("owner");
    const panel = new PanelClient(t);
    await panel.login("owner", password);
    const page = await panel.page(`/keys/${await keyIdOf(key)}`);
    expect(page.status).toBe(200);
    const html = page.html;
    expect(html).toContain("Активирован на ПК HOME-PC, IP 127.0.0.1");
    expect(html).toContain("лоадер");
    // PC-A, PC-B and PC-C were each refused twice (once per process), PC-D too.
    for (const uuid of ["PC-A", "PC-B", "PC-C", "PC-D"]) {
      expect(html).toContain(`HWID mismatch: чужой ПК ${uuid} — 2 раза; IP: 127.0.0.1`);
    }
    expect(html).toContain("Оповещение администраторам: похоже, ключ передают");
    expect(html).toContain("Забанен — по оповещению о передаче");
    expect(html).toContain("Анна (@anna_admin), администратор в боте");
    expect(html).toContain("забанен</span>");
  });
});

describe("when an alert is raised", () => {
  /** A sold key bound to HOME-PC, with mismatches from `uuids` foreign PCs written `hoursAgo` hours ago. */
  async function keyWithMismatches(uuids: string[], hoursAgo = 0): Promise<number> {
    const key = await soldKey(t, PRODUCT, 30);
    await t.sql`update keys set hwid = 'HOME-PC', activated_at = now(), expires_at = now() + interval '30 days' where key = ${key}`;
    const id = await keyIdOf(key);
    for (const uuid of uuids) {
      await t.sql`
        insert into key_mismatches (key_id, uuid, count, first_at, last_at, ips)
        values (${id}, ${uuid}, 2, now() - make_interval(hours => ${hoursAgo}), now() - make_interval(hours => ${hoursAgo}), '{}')`;
    }
    return id;
  }

  const alertsOf = async (keyId: number) =>
    (await t.sql`select count(*)::int as n from sharing_alerts where key_id = ${keyId}`)[0]!.n as number;

  test("ten checks of one key racing in two processes raise one alert, with one copy per admin", async () => {
    const id = await keyWithMismatches(["X-1", "X-2", "X-3"]);
    const sql = connectDatabase(t.databaseUrl, { max: 5 });
    const cache = new RedisCache(t.redisUrl, t.redisPrefix);
    try {
      const peer = createShop({ sql, cache, config: t.config });
      const raised = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? t.shop : peer).sharing.check([id])),
      );
      expect(raised.reduce((a, b) => a + b, 0)).toBe(1);
    } finally {
      await cache.close();
      await sql.end({ timeout: 2 });
    }
    expect(await alertsOf(id)).toBe(1);
    const [copies] = await t.sql`
      select count(*)::int as n from sharing_alert_copies c join sharing_alerts a on a.id = c.alert_id
      where a.key_id = ${id}`;
    expect(copies!.n).toBe(ADMINS.length);
  });

  test("the key's own PC, mismatches older than the period and a banned key do not count", async () => {
    // Two foreign PCs and the key's own: below three.
    const own = await keyWithMismatches(["Y-1", "Y-2", "HOME-PC"]);
    // Three foreign PCs, but a day and more ago.
    const old = await keyWithMismatches(["Z-1", "Z-2", "Z-3"], 25);
    const banned = await keyWithMismatches(["W-1", "W-2", "W-3"]);
    await t.sql`update keys set banned_at = now() where id = ${banned}`;
    expect(await t.shop.sharing.check([own, old, banned])).toBe(0);
    for (const id of [own, old, banned]) expect(await alertsOf(id)).toBe(0);
  });

  test("the thresholds are the settings': 4 PCs within 48 hours, then the old mismatches count", async () => {
    const id = await keyWithMismatches(["V-1", "V-2", "V-3"], 30);
    try {
      await t.shop.settings.update({ sharingAlertUuids: 4, sharingAlertHours: 48 });
      expect(await t.shop.sharing.check([id])).toBe(0);
      await t.sql`
        insert into key_mismatches (key_id, uuid, count, first_at, last_at) values (${id}, 'V-4', 1, now(), now())`;
      expect(await t.shop.sharing.check([id])).toBe(1);
      expect(await alertsOf(id)).toBe(1);
      const [alert] = await t.sql`select uuids, mismatches, hours from sharing_alerts where key_id = ${id}`;
      expect(alert).toEqual({ uuids: 4, mismatches: "7", hours: 48 });
    } finally {
      await t.shop.settings.update({ sharingAlertUuids: 3, sharingAlertHours: 24 });
    }
  });
});
