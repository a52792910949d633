/**
 * `setup.sh backup` (deploy/backup.sh's do_backup) on a real database and a data directory laid out as the app
 * leaves it: what goes into the backup's data.tar. A build being written (an upload, or this server's copy being
 * fetched from PostgreSQL) is a `.part` file under DATA_DIR/builds (src/shop/products/builds.ts) until it is whole
 * and renamed: half a zip has no place in a backup, and a file growing while tar reads it would fail the backup.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

setDefaultTimeout(30_000);

const ROOT = join(import.meta.dir, "..");
let t: TestShop;
let work: string;

beforeAll(async () => {
  t = await createTestShop();
  work = mkdtempSync(join(tmpdir(), "mph-backup-"));
});

afterAll(async () => {
  if (work) rmSync(work, { recursive: true, force: true });
  await t?.close();
});

/** setup.sh sourced (it then only defines its functions), do_backup run as root would, pg_dump as this user. */
function backup(dataDir: string, file: string): { code: number; out: string } {
  const script = `set -e; source "$ROOT/setup.sh"
    as_postgres() { "$@"; }
    DB_NAME=$DATABASE_URL DATA_DIR=$DATA APP_DIR=$WORK/opt
    do_backup "$FILE"`;
  const r = Bun.spawnSync(["bash", "-c", script], {
    env: { ...process.env, ROOT, WORK: work, DATA: dataDir, FILE: file, DATABASE_URL: t.databaseUrl },
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode, out: `${r.stdout.toString()}${r.stderr.toString()}`.trim() };
}

function members(tarFile: string, member: string): string[] {
  const inner = Bun.spawnSync(["tar", "-xOf", tarFile, member], { stdout: "pipe" }).stdout;
  const list = Bun.spawnSync(["tar", "-t"], { stdin: inner, stdout: "pipe" }).stdout.toString();
  return list.split("\n").filter((line) => line !== "" && !line.endsWith("/"));
}

describe("setup.sh backup", () => {
  test("keeps the uploaded builds and the database, and leaves out an upload still being written", async () => {
    const data = join(work, "data");
    mkdirSync(join(data, "builds"), { recursive: true });
    // Named as builds.ts names them: an upload being written, and a copy being fetched from the database.
    writeFileSync(join(data, "builds", "1-1700000000000-0123abcd.zip"), "PK\x03\x04 a whole build");
    writeFileSync(join(data, "builds", "2-1700000000001-4567cdef.zip.part"), "PK\x03\x04 half of an upload");
    writeFileSync(join(data, "builds", "1-1700000000000-0123abcd.zip.89abcdef.part"), "PK\x03\x04 half of a copy");
    const file = join(work, "out", "backup.tar");
    const r = backup(data, file);
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toContain(`backup: ${file}`);
    expect(members(file, "data.tar")).toEqual(["./builds/1-1700000000000-0123abcd.zip"]);
    const listed = Bun.spawnSync(["tar", "-tf", file], { stdout: "pipe" }).stdout.toString().split("\n");
    expect(listed.filter(Boolean).sort()).toEqual(["data.tar", "database.dump", "manifest.txt"]);
  });
});
