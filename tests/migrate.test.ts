import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { connectDatabase, type Sql } from "../src/db/client.ts";
import { migrate, SQL_DIR } from "../src/db/migrate.ts";

// These tests start processes and servers: on a loaded shared machine that can take a while; hang protection only.
setDefaultTimeout(30_000);

const admin = postgres(process.env.MPH_TEST_ADMIN_URL!, { max: 1, onnotice: () => {} });
const opened: Sql[] = [];
let counter = 0;
afterAll(async () => {
  for (const sql of opened) await sql.end({ timeout: 2 });
  await admin.end();
});

/** An empty database (not cloned from the migrated template); the run's cleanup drops it by its name. */
async function emptyDatabase(): Promise<string> {
  const name = `mph_t_${process.env.MPH_TEST_RUN_ID}_mig${process.pid}_${++counter}`;
  await admin.unsafe(`create database "${name}"`);
  const url = new URL(process.env.MPH_TEST_ADMIN_URL!);
  url.pathname = `/${name}`;
  return url.toString();
}

function connect(url: string): Sql {
  const sql = connectDatabase(url, { max: 2 });
  opened.push(sql);
  return sql;
}

const ALL = readdirSync(SQL_DIR)
  .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
  .sort();

describe("migrations", () => {
  test("two connections migrating a fresh database at once: both succeed, each file applied once", async () => {
    const url = await emptyDatabase();
    const [a, b] = await Promise.all([migrate(connect(url)), migrate(connect(url))]);
    expect([...a!.applied, ...b!.applied].sort()).toEqual(ALL);
    expect(a!.current).toBe(ALL.at(-1)!);
    const sql = connect(url);
    const rows = await sql`select name from schema_migrations order by name`;
    expect(rows.map((r) => r.name)).toEqual(ALL);
    const [settings] = await sql`select count(*)::int as n from settings`;
    expect(settings!.n).toBe(1);
  });

  test("two processes migrating at once (`bun run cli migrate`): both exit 0, one applies, the other finds it done", async () => {
    const url = await emptyDatabase();
    const run = () =>
      Bun.spawn(["bun", "src/cli.ts", "migrate"], {
        env: { ...process.env, DATABASE_URL: url, REDIS_URL: "", LOG_LEVEL: "" },
        stdout: "pipe",
        stderr: "pipe",
      });
    const procs = [run(), run()];
    const outs = await Promise.all(
      procs.map(async (p) => ({ code: await p.exited, out: await new Response(p.stdout).text() })),
    );
    expect(outs.map((o) => o.code)).toEqual([0, 0]);
    const applied = outs.flatMap((o) => o.out.split("\n").filter((l) => l.startsWith("applied ")));
    expect(applied.sort()).toEqual(ALL.map((f) => `applied ${f}`));
    for (const o of outs) expect(o.out).toContain(`database is up to date (${ALL.at(-1)})`);
  });

  test("running again applies nothing", async () => {
    const url = await emptyDatabase();
    await migrate(connect(url));
    expect((await migrate(connect(url))).applied).toEqual([]);
  });

  test("a failing migration is rolled back whole, named in the error, and not recorded", async () => {
    const url = await emptyDatabase();
    const dir = mkdtempSync(join(tmpdir(), "mph-mig-"));
    writeFileSync(join(dir, "0001_ok.sql"), "create table one (id int);");
    writeFileSync(join(dir, "0002_broken.sql"), "create table two (id int);\ninsert into nowhere values (1);");
    const sql = connect(url);
    await expect(migrate(sql, dir)).rejects.toThrow(/migration 0002_broken\.sql failed: .*nowhere/);
    const rows = await sql`select name from schema_migrations`;
    expect(rows.map((r) => r.name)).toEqual(["0001_ok.sql"]);
    const [two] = await sql`select to_regclass('two') as t`;
    expect(two!.t).toBeNull();
    // The lock was released: fixing the file lets the next run finish.
    writeFileSync(join(dir, "0002_broken.sql"), "create table two (id int);");
    expect((await migrate(sql, dir)).applied).toEqual(["0002_broken.sql"]);
  });
});
