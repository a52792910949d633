import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GENERATED_KEY_PATTERN } from "../src/lib/keys.ts";
import { auth, ensureProduct, eventually, HWID_MISMATCH } from "./helpers/licence.ts";
import { cleanEnv, type Finished, runToEnd } from "./helpers/process.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// These tests start processes and servers: on a loaded shared machine that can take a while; hang protection only.
setDefaultTimeout(30_000);

let t: TestShop;
beforeAll(async () => {
  t = await createTestShop();
});
afterAll(async () => {
  await t.close();
});

/** `bun src/cli.ts …` as a real process, on the test shop's database and Redis namespace. */
async function cli(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}): Promise<Finished> {
  const env = cleanEnv({
    DATABASE_URL: t.databaseUrl,
    REDIS_URL: t.redisUrl,
    REDIS_PREFIX: t.redisPrefix,
    DATA_DIR: t.config.dataDir,
    ...options.env,
  });
  return runToEnd(["bun", "src/cli.ts", ...args], env, options.stdin);
}

const lines = (text: string) => text.split("\n").filter(Boolean);

describe("usage", () => {
  test("help lists every command of docs/operator.md#cli and exits 0", async () => {
    const r = await cli(["help"]);
    expect(r.code).toBe(0);
    for (const name of [
      "migrate",
      "admin:reset [login]",
      "product:add <name> [--description <text>]",
      "price:set <product> <days> <rub>",
      "keys:generate <product> <days> <count>",
      "keys:import <product> <days>",
      "keys:issue <product> <days> [--to <telegram id>]",
      "keys:reset-hwid <key>",
      "build:upload <product> <zip path>",
      "bot:set [--token",
      "settings:set <name> <value>",
      "admins:add <telegram id>",
      "admins:remove <telegram id>",
    ]) {
      expect(r.out).toContain(name);
    }
  });

  test("wrong arguments print the reason and the usage and exit 2, before touching any store", async () => {
    // A database that does not answer: a command that got past its argument checks would fail with 1 instead.
    const env = { DATABASE_URL: "postgres://postgres@127.0.0.1:1/nothing", REDIS_URL: "redis://127.0.0.1:1" };
    const cases: [string[], RegExp][] = [
      [[], /^error: no command given$/],
      [["product:launch", "X"], /^error: unknown command "product:launch"$/],
      [["product:add"], /^error: missing arguments$/],
      [["product:add", "A/B"], /^error: product name: /],
      [["product:add", "X", "--description"], /^error: --description needs a value$/],
      [["product:add", "X", "--price", "5"], /^error: unknown option --price$/],
      [["price:set", "X", "8", "100"], /^error: days must be one of 1, 7, 14, 30, 90, got "8"$/],
      [["price:set", "X", "7", "-5"], /^error: rub must be a whole number from 0 to 10000000, got "-5"$/],
      [["price:set", "X", "7", "9.99"], /^error: rub must be a whole number/],
      [["price:set", "X", "7", "100", "extra"], /^error: unexpected argument "extra"$/],
      [["keys:generate", "X", "7", "0"], /^error: count must be a whole number from 1 to 10000, got "0"$/],
      [["keys:generate", "X", "7", "10001"], /^error: count must be/],
      [["keys:generate", "X", "week", "5"], /^error: days must be one of/],
      [["keys:import", "X"], /^error: missing arguments$/],
      [["keys:issue", "X", "7", "--to", "abc"], /^error: telegram id must be a positive whole number, got "abc"$/],
      [["keys:issue", "X", "7", "--to", "0"], /^error: telegram id must be/],
      [["keys:reset-hwid", "A KEY"], /^error: key: contains spaces/],
      [["build:upload", "X"], /^error: missing arguments$/],
      [["bot:set"], /^error: give at least one of --token, --enabled, --maintenance, --stars$/],
      [["bot:set", "--enabled", "yes"], /^error: --enabled must be true or false, got "yes"$/],
      [["bot:set", "--maintenance=1"], /^error: --maintenance must be true or false/],
      [["bot:set", "--token", "nonsense"], /^error: --token must look like/],
      [["bot:set", "--enabled", "true", "--enabled", "false"], /^error: --enabled given twice$/],
      [["admins:add", "-5"], /^error: telegram id must be/],
      [["admins:add", "12", "13"], /^error: unexpected argument "13"$/],
      [["admins:remove", "1e5"], /^error: telegram id must be/],
      [["admin:reset", "bad login"], /^error: login must be/],
      [["settings:set", "hwid_reset_cooldown_days"], /^error: missing arguments$/],
      [
        ["settings:set", "cooldown", "3"],
        /^error: unknown setting "cooldown"; the settings are hwid_reset_cooldown_days/,
      ],
      [
        ["settings:set", "hwid_reset_cooldown_days", "366"],
        /^error: hwid_reset_cooldown_days must be a whole number from 0 to 365, got "366"$/,
      ],
      [["settings:set", "hwid_reset_cooldown_days", "-1"], /^error: hwid_reset_cooldown_days must be a whole number/],
      [["settings:set", "hwid_reset_cooldown_days", "2.5"], /^error: hwid_reset_cooldown_days must be a whole/],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(args, { env })));
    results.forEach((r, i) => {
      const [args, reason] = cases[i]!;
      const err = lines(r.err);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(err[0]!).toMatch(reason);
      expect(err[1]!).toStartWith("usage: bun run cli ");
      expect(r.out).toBe("");
    });
  });

  test("`<command> --help` prints that command's usage and exits 0", async () => {
    const r = await cli(["keys:issue", "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toStartWith("usage: bun run cli keys:issue <product> <days> [--to <telegram id>]");
  });

  test("bad configuration: one line, exit 2", async () => {
    const r = await cli(["admins:add", "1"], { env: { REDIS_URL: "localhost:6379" } });
    expect(r.code).toBe(2);
    expect(lines(r.err)).toEqual(["config error: REDIS_URL: must be a URL starting with redis:// or rediss://"]);
  });

  test("a database that does not answer: one line, exit 1", async () => {
    const r = await cli(["admins:add", "1"], { env: { DATABASE_URL: "postgres://postgres@127.0.0.1:1/nothing" } });
    expect(r.code).toBe(1);
    expect(lines(r.err)).toHaveLength(1);
    expect(r.err).toStartWith("error: cannot reach the database: ");
  });
});

describe("commands", () => {
  test("migrate reports the database up to date (the test database is already migrated)", async () => {
    const r = await cli(["migrate"]);
    expect(r).toMatchObject({ code: 0, err: "" });
    expect(r.out).toMatch(/^database is up to date \(\d{4}_\w+\.sql\)\n$/);
  });

  test("admin:reset prints a login and a password that opens the panel account", async () => {
    const first = await cli(["admin:reset"]);
    expect(first.code).toBe(0);
    const [login, password] = lines(first.out);
    expect(login).toBe("login: admin");
    expect(password).toMatch(/^password: \S{20}$/);
    expect(await t.shop.accounts.verify("admin", password!.slice(10))).not.toBeNull();
    const again = await cli(["admin:reset"]);
    const newPassword = lines(again.out)[1]!.slice(10);
    expect(await t.shop.accounts.verify("admin", password!.slice(10))).toBeNull();
    expect(await t.shop.accounts.verify("admin", newPassword)).not.toBeNull();
    const ops = await cli(["admin:reset", "ops.team"]);
    expect(lines(ops.out)[0]).toBe("login: ops.team");
  });

  test("product:add creates the product and prints its auth API address; a second time fails", async () => {
    const r = await cli(["product:add", "Мой Продукт", "--description", "Чит для игры"]);
    expect(r.code).toBe(0);
    expect(lines(r.out)).toEqual([
      "product added: Мой Продукт",
      `auth API: http://127.0.0.1:3000/Morpheus%20Private/api/${encodeURIComponent("Мой Продукт")}/auth`,
    ]);
    const product = await t.shop.products.byName("Мой Продукт");
    expect(product?.description).toBe("Чит для игры");
    const again = await cli(["product:add", "Мой Продукт"]);
    expect(again.code).toBe(1);
    expect(lines(again.err)).toEqual(["error: Продукт «Мой Продукт» уже существует"]);
  });

  test("price:set sets a price; 0 and none take the duration off sale; an unknown product fails", async () => {
    const p = await ensureProduct(t, "Priced");
    expect(await cli(["price:set", "Priced", "7", "899"])).toMatchObject({
      code: 0,
      out: "Priced, 7 days: 899 RUB\n",
    });
    await cli(["price:set", "Priced", "30", "1999"]);
    expect(await t.shop.products.prices(p.id)).toEqual({ 7: 899, 30: 1999 });
    expect((await cli(["price:set", "Priced", "7", "0"])).out).toBe("Priced, 7 days: off sale\n");
    await cli(["price:set", "Priced", "30", "none"]);
    expect(await t.shop.products.prices(p.id)).toEqual({});
    const missing = await cli(["price:set", "Nope", "7", "100"]);
    expect(missing.code).toBe(1);
    expect(lines(missing.err)).toEqual(["error: Продукт «Nope» не найден"]);
  });

  test("keys:generate prints the new keys one per line, and they are in stock", async () => {
    const p = await ensureProduct(t, "Generated");
    const r = await cli(["keys:generate", "Generated", "14", "25"]);
    expect(r.code).toBe(0);
    const keys = lines(r.out);
    expect(keys).toHaveLength(25);
    for (const key of keys) expect(key).toMatch(GENERATED_KEY_PATTERN);
    const rows = await t.sql`select key from keys where product_id = ${p.id} and days = 14 and state = 'available'`;
    expect(new Set(rows.map((row) => row.key))).toEqual(new Set(keys));
  });

  test("keys:import reads stdin and reports imported and duplicate counts", async () => {
    await ensureProduct(t, "Imported");
    const r = await cli(["keys:import", "Imported", "7"], { stdin: "K-1\nK-2\r\nK-1\n\n  K-3  \n" });
    expect(r).toEqual({ code: 0, out: "imported 3, duplicates 1\n", err: "" });
    const again = await cli(["keys:import", "Imported", "7"], { stdin: "K-3\nK-4\n" });
    expect(again.out).toBe("imported 1, duplicates 1\n");
    const empty = await cli(["keys:import", "Imported", "7"], { stdin: "" });
    expect(empty).toEqual({ code: 0, out: "imported 0, duplicates 0\n", err: "" });
  });

  test("keys:import imports the good lines, reports the bad ones on stderr and exits 1", async () => {
    await ensureProduct(t, "Imported");
    const r = await cli(["keys:import", "Imported", "1"], { stdin: `GOOD-1\nhas space\nGOOD-2\n${"x".repeat(200)}\n` });
    expect(r.code).toBe(1);
    expect(r.out).toBe("imported 2, duplicates 0\n");
    expect(lines(r.err)).toEqual([
      "line 2: contains spaces or non-printable characters",
      "line 4: longer than 128 characters",
      "error: 2 invalid line(s) skipped; the other keys were imported",
    ]);
  });

  test("keys:issue sells one key and prints it; --to records the buyer; out of stock exits 1", async () => {
    const p = await ensureProduct(t, "Issued");
    const [k1, k2] = await t.shop.keys.generate(p.id, 90, 2);
    const first = await cli(["keys:issue", "Issued", "90"]);
    expect(first).toEqual({ code: 0, out: `${k1}\n`, err: "" });
    const second = await cli(["keys:issue", "Issued", "90", "--to", "5550001"]);
    expect(second.out).toBe(`${k2}\n`);
    const rows = await t.sql`select key, state, gift, buyer_id from keys where product_id = ${p.id} order by id`;
    expect(rows.map((r) => ({ ...r }))).toEqual([
      { key: k1, state: "sold", gift: true, buyer_id: null },
      { key: k2, state: "sold", gift: true, buyer_id: "5550001" },
    ]);
    const none = await cli(["keys:issue", "Issued", "90"]);
    expect(none.code).toBe(1);
    expect(none.out).toBe("");
    expect(lines(none.err)).toEqual(["error: Нет свободных ключей на 90 дней"]);
  });

  test("keys:reset-hwid clears the HWID; a running app lets the next PC bind at once, expiry unchanged", async () => {
    const p = await ensureProduct(t, "Reset");
    await t.shop.keys.generate(p.id, 7, 1);
    const key = (await t.shop.keys.issue(p.id, 7)).key;
    const first = await auth(t, "Reset", { key, uuid: "OLD-PC" });
    expect(await auth(t, "Reset", { key, uuid: "NEW-PC" })).toEqual(HWID_MISMATCH);
    expect(t.shop.authCache.get("Reset", key)).not.toBeNull();

    const r = await cli(["keys:reset-hwid", key]);
    expect(r).toEqual({ code: 0, out: `HWID cleared: ${key} (expires ${first.body.expires_at})\n`, err: "" });
    await eventually(async () => t.shop.authCache.get("Reset", key) === null, 5_000);
    const rebound = await auth(t, "Reset", { key, uuid: "NEW-PC" });
    expect(rebound.status).toBe(200);
    expect(rebound.body.expires_at).toBe(first.body.expires_at);

    const unknown = await cli(["keys:reset-hwid", "MPH-NOPE0-NOPE0-NOPE0"]);
    expect(unknown.code).toBe(1);
    expect(lines(unknown.err)).toEqual(["error: Ключ не найден"]);
  });

  test("build:upload stores a zip; a file that is not a zip, or is missing, fails with one line", async () => {
    const p = await ensureProduct(t, "Built");
    const dir = mkdtempSync(join(tmpdir(), "mph-cli-"));
    const zip = join(dir, "loader v2.zip");
    writeFileSync(zip, new Uint8Array([0x50, 0x4b, 0x03, 0x04, 9, 9, 9, 9]));
    const r = await cli(["build:upload", "Built", zip]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^build uploaded: loader v2\.zip, 8 bytes, sha256 [0-9a-f]{64}\n$/);
    const product = await t.shop.products.byId(p.id);
    expect(product?.build).toMatchObject({ name: "loader v2.zip", size: 8 });
    expect(await Bun.file(product!.build!.path).bytes()).toEqual(new Uint8Array([0x50, 0x4b, 3, 4, 9, 9, 9, 9]));

    const text = join(dir, "readme.zip");
    writeFileSync(text, "not a zip at all");
    const notZip = await cli(["build:upload", "Built", text]);
    expect(notZip.code).toBe(1);
    expect(lines(notZip.err)).toEqual(["error: Это не zip-архив (проверено по содержимому файла)"]);
    const missing = await cli(["build:upload", "Built", join(dir, "gone.zip")]);
    expect(missing.code).toBe(1);
    expect(lines(missing.err)).toHaveLength(1);
    rmSync(dir, { recursive: true, force: true });
  });

  test("bot:set changes the settings, and a running app hears of it at once", async () => {
    await t.shop.settings.get();
    const r = await cli(["bot:set", "--enabled", "true", "--maintenance=true"]);
    expect(r).toEqual({ code: 0, out: "bot: on, maintenance: on, stars: off, token: not set\n", err: "" });
    await eventually(async () => {
      const s = await t.shop.settings.get();
      return s.botEnabled && s.maintenance;
    }, 5_000);
    const token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
    const viaStdin = await cli(["bot:set", "--token", "-", "--maintenance", "false"], { stdin: `${token}\n` });
    expect(viaStdin.out).toBe("bot: on, maintenance: off, stars: off, token: set\n");
    await eventually(async () => (await t.shop.settings.get()).botToken === token, 5_000);
    expect(viaStdin.out + viaStdin.err).not.toContain(token);
  });

  test("settings:set sets the buyer's HWID reset cooldown (0 turns it off), and a running app hears of it at once", async () => {
    expect((await t.shop.settings.get()).hwidResetCooldownDays).toBe(7);
    const r = await cli(["settings:set", "hwid_reset_cooldown_days", "3"]);
    expect(r).toEqual({ code: 0, out: "hwid_reset_cooldown_days: 3\n", err: "" });
    await eventually(async () => (await t.shop.settings.get()).hwidResetCooldownDays === 3, 5_000);
    expect(await cli(["settings:set", "hwid_reset_cooldown_days", "0"])).toEqual({
      code: 0,
      out: "hwid_reset_cooldown_days: 0\n",
      err: "",
    });
    await eventually(async () => (await t.shop.settings.get()).hwidResetCooldownDays === 0, 5_000);
    await t.shop.settings.update({ hwidResetCooldownDays: 7 });
  });

  test("admins:add and admins:remove, heard by a running app; adding an admin again or removing a non-admin fails", async () => {
    expect(await t.shop.admins.isAdmin(424242)).toBe(false);
    expect(await cli(["admins:add", "424242"])).toEqual({ code: 0, out: "admin added: 424242\n", err: "" });
    await eventually(() => t.shop.admins.isAdmin(424242), 5_000);
    // Adding them again says they already are one, and leaves them (and the note the panel gave them) as they were.
    await t.sql`update bot_admins set note = 'поддержка' where telegram_id = 424242`;
    const twice = await cli(["admins:add", "424242"]);
    expect(twice).toEqual({ code: 1, out: "", err: "error: 424242 уже администратор — ничего не изменено\n" });
    expect([...(await t.sql`select note from bot_admins where telegram_id = 424242`)]).toEqual([{ note: "поддержка" }]);
    expect(await cli(["admins:remove", "424242"])).toEqual({ code: 0, out: "admin removed: 424242\n", err: "" });
    await eventually(async () => !(await t.shop.admins.isAdmin(424242)), 5_000);
    const again = await cli(["admins:remove", "424242"]);
    expect(again.code).toBe(1);
    expect(lines(again.err)).toEqual(["error: 424242 не администратор"]);
  });
});
