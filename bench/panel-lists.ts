/**
 * bench/panel-lists: the panel's lists at the sizes the issue names — 100 000 bot users and 1 000 000 keys (plus
 * 100 000 orders) — asked over HTTP by a logged-in admin, one request at a time, as a browser does. The figure is
 * the server time per request, read from the app's own request log (the `ms` of each `request` line: from the
 * request's arrival to its answer), next to what the client saw. Baseline in the same run: the settings page, a
 * panel page of the same stack (session, CSRF token, layout) that reads no list.
 *
 * Standalone: `bun run bench/panel-lists.ts` (BENCH_KEEP=1 keeps the database for EXPLAIN by hand).
 */
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { MemoryCache } from "../src/cache/cache.ts";
import { loadConfig } from "../src/config.ts";
import { connectDatabase } from "../src/db/client.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { createShop } from "../src/shop/index.ts";
import { PanelClient } from "../tests/helpers/panel-client.ts";
import {
  type BenchResult,
  benchDatabase,
  bounded,
  type Check,
  clearRedisPrefix,
  fmt,
  load,
  median,
  ms,
  ratio,
  startApp,
  TMP,
} from "./lib.ts";

const USERS = 100_000;
const KEYS = 1_000_000;
const ORDERS = 100_000;
const REPEATS = Number(process.env.BENCH_PANEL_REPEATS ?? 15);
const TARGET_MS = 50;

async function seed(url: string): Promise<void> {
  const sql = connectDatabase(url, { max: 3 });
  try {
    await sql`insert into products (name) values ('Big'), ('Small')`;
    await sql`
      insert into bot_users (telegram_id, username, first_name, last_name, first_seen_at, last_seen_at)
      select 10000000 + g, 'user' || g, (array['Иван','Мария','Алексей','Ольга','John'])[1 + g % 5] || g,
        'Фамилия' || (g % 977),
        now() - make_interval(days => g % 400), now() - make_interval(mins => g % 50000)
      from generate_series(1, ${USERS}) g`;
    // Keys of one product: 70 % sold to the users above, the rest unsold across the five durations.
    await Promise.all([
      sql`
        insert into keys (product_id, days, key, state, sold_at, gift, buyer_id)
        select 1, (array[1,7,14,30,90])[1 + g % 5], 'MPH-' || upper(md5(g::text)),
          case when g % 10 < 7 then 'sold'::key_state else 'available'::key_state end,
          case when g % 10 < 7 then now() - make_interval(mins => g % 100000) end,
          g % 10 < 7,
          case when g % 10 < 7 then 10000000 + 1 + g % ${USERS} end
        from generate_series(1, ${KEYS}) g`,
      sql`
        insert into orders (user_id, product_id, days, amount_rub, status, created_at, reserved_until, paid_at,
                            provider, paid_rub)
        select 10000000 + 1 + g % ${USERS}, 1, 7, 899,
          (array['delivered','delivered','delivered','expired','pending','paid_no_stock'])[1 + g % 6]::order_status,
          now() - make_interval(mins => g), now(),
          case when g % 6 in (0, 1, 2, 5) then now() - make_interval(mins => g) end,
          case when g % 6 in (0, 1, 2, 5) then 'anypay' end,
          case when g % 6 in (0, 1, 2, 5) then 899 end
        from generate_series(1, ${ORDERS}) g`,
    ]);
    await sql`vacuum analyze`;
  } finally {
    await sql.end({ timeout: 2 });
  }
}

type Case = { id: string; name: string; path: string; htmx?: { target?: string }; list: boolean };

type LogLine = { msg?: string; path?: string; status?: number; ms?: number };

/** The request-log lines written so far, in order. */
function requestLines(file: string): LogLine[] {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const lines: LogLine[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const parsed = JSON.parse(line) as LogLine;
      if (parsed.msg === "request") lines.push(parsed);
    } catch {
      // A line cut at the end of the file: read again next time.
    }
  }
  return lines;
}

export function runPanelBench(): Promise<BenchResult> {
  return bounded("panel", 4 * 60_000, async (defer) => {
    const started = performance.now();
    setLogLevel("error");
    const runId = `${Date.now().toString(36)}${process.pid}`;
    const prefix = `mphbench:${runId}:panel:`;
    defer(() => clearRedisPrefix(prefix));
    const logFile = join(TMP, `panel-${runId}.log`);
    defer(() => rm(logFile, { force: true }));
    const db = await benchDatabase("panel");
    defer(async () => {
      if (process.env.BENCH_KEEP === "1") console.error(`bench/panel: kept database ${db.name}`);
      else await db.drop();
    });
    const loadBefore = load();
    const seedStarted = performance.now();
    await seed(db.url);
    const seedS = (performance.now() - seedStarted) / 1000;

    const sql = connectDatabase(db.url, { max: 1 });
    const shop = createShop({ sql, cache: new MemoryCache(), config: loadConfig({}) });
    const { login, password } = await shop.accounts.reset("admin");
    const someKey = `MPH-${new Bun.CryptoHasher("md5").update("424242").digest("hex").toUpperCase()}`;
    await sql.end({ timeout: 2 });

    const app = await startApp({ databaseUrl: db.url, redisPrefix: prefix, logTo: logFile });
    defer(app.stop);
    const config = { basePath: "/Morpheus Private" };
    const client = new PanelClient({
      config: config as ReturnType<typeof loadConfig>,
      request: (path, init) => fetch(`${app.base}${path}`, { ...init, redirect: "manual" }),
    });
    const loggedIn = await client.login(login, password);
    if (loggedIn.status >= 400) throw new Error(`bench/panel: login refused (${loggedIn.status})`);

    const cases: Case[] = [
      { id: "settings", name: "settings page (baseline: no list)", path: "/settings", list: false },
      { id: "users.first", name: "users: first page (whole page)", path: "/users", list: true },
      { id: "users.first-htmx", name: "users: first page (htmx swap)", path: "/users", htmx: {}, list: true },
      {
        id: "users.search-name",
        name: "users: search by name prefix",
        path: `/users?q=${encodeURIComponent("Мария12")}`,
        htmx: {},
        list: true,
      },
      {
        id: "users.search-username",
        name: "users: search @username",
        path: "/users?q=%40user9999",
        htmx: {},
        list: true,
      },
      {
        id: "users.search-id",
        name: "users: search by Telegram id",
        path: "/users?q=10055555",
        htmx: {},
        list: true,
      },
      {
        id: "keys.page",
        name: "keys: product page, unsold keys first page (whole page, with stock counts)",
        path: "/products/1/keys",
        list: true,
      },
      {
        id: "keys.sold-first",
        name: "keys: sold keys, first page (htmx swap of the list)",
        path: "/products/1/keys?list=sold",
        htmx: { target: "div#key-list" },
        list: true,
      },
      {
        id: "keys.tab",
        name: "keys: sold tab (htmx swap of the section, with counts)",
        path: "/products/1/keys?list=sold",
        htmx: {},
        list: true,
      },
      {
        id: "keys.search-key",
        name: "keys: search by key prefix",
        path: `/products/1/keys?list=sold&q=${someKey.slice(0, 10)}`,
        htmx: { target: "div#key-list" },
        list: true,
      },
      {
        id: "keys.search-buyer",
        name: "keys: search by buyer's Telegram id",
        path: "/products/1/keys?list=sold&q=10000777",
        htmx: { target: "div#key-list" },
        list: true,
      },
    ];

    const results = [];
    for (const c of cases) {
      const ask = async () => {
        const t0 = performance.now();
        const res = await client.get(c.path, c.htmx ? { htmx: "partial", ...c.htmx } : {});
        const body = await res.text();
        const clientMs = performance.now() - t0;
        if (res.status !== 200) throw new Error(`bench/panel: ${c.path} answered ${res.status}: ${body.slice(0, 200)}`);
        return clientMs;
      };
      await ask();
      const before = requestLines(logFile).length;
      const clientTimes: number[] = [];
      for (let i = 0; i < REPEATS; i++) clientTimes.push(await ask());
      // The log line is written just after the answer is sent: wait for all of them.
      let lines: LogLine[] = [];
      for (let tries = 0; tries < 50; tries++) {
        lines = requestLines(logFile).slice(before);
        if (lines.length >= REPEATS) break;
        await Bun.sleep(20);
      }
      const server = lines.slice(0, REPEATS).map((l) => l.ms ?? Number.NaN);
      if (server.length < REPEATS || server.some((x) => Number.isNaN(x))) {
        throw new Error(`bench/panel: the request log has ${server.length} timed lines for ${c.path}`);
      }
      results.push({
        ...c,
        serverMs: median(server),
        serverMaxMs: Math.max(...server),
        clientMs: median(clientTimes),
      });
    }

    const baseline = results.find((r) => r.id === "settings")!;
    const lists = results.filter((r) => r.list);
    const worst = lists.reduce((a, b) => (b.serverMs > a.serverMs ? b : a));
    const checks: Check[] = lists.map((r) => ({
      id: `panel.${r.id}`,
      benchmark: "panel",
      what: r.name,
      figure: `${ms(r.serverMs)} ms`,
      baseline: `${ms(baseline.serverMs)} ms`,
      value: r.serverMs,
      target: `≤ ${TARGET_MS} ms`,
      met: r.serverMs <= TARGET_MS,
    }));
    const markdown = [
      "## Panel lists",
      "",
      `${fmt(USERS)} bot users, ${fmt(KEYS)} keys of one product (70 % sold), ${fmt(ORDERS)} orders, seeded in ${seedS.toFixed(1)} s.`,
      `A logged-in admin asks each page ${REPEATS} times in a row over HTTP (after one warm-up), one request at a time.`,
      "Server time = the `ms` of the app's own request-log line (arrival to answer), median and worst of the runs;",
      "client time = as the bench saw it over loopback. Baseline: the settings page (same session check, CSRF",
      "token and layout, no list).",
      "",
      "| page | server ms (median) | server ms (worst) | client ms | × baseline |",
      "|---|---:|---:|---:|---:|",
      ...results.map(
        (r) =>
          `| ${r.name} | ${ms(r.serverMs)} | ${ms(r.serverMaxMs)} | ${ms(r.clientMs)} | ${r.id === "settings" ? "1.00" : ratio(r.serverMs / baseline.serverMs)} |`,
      ),
      "",
      `Slowest list: ${worst.name}, ${ms(worst.serverMs)} ms (target ≤ ${TARGET_MS} ms per page).`,
      `Load average ${loadBefore} before, ${load()} after.`,
      "",
    ].join("\n");
    return { name: "panel", markdown, checks, seconds: (performance.now() - started) / 1000 };
  });
}

if (import.meta.main) {
  const result = await runPanelBench();
  console.log(result.markdown);
}
