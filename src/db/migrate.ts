import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { log } from "../lib/log.ts";
import { newKeyPair } from "../lib/signing.ts";
import type { Sql } from "./client.ts";

export const SQL_DIR = join(import.meta.dir, "..", "..", "sql");

/** An arbitrary constant: every process that migrates this database takes the same advisory lock. */
const MIGRATION_LOCK = 7_310_424_001;

export type MigrationResult = { applied: string[]; current: string | null };

/**
 * Applies the numbered files of sql/ that this database has not seen, each in its own transaction. Two processes
 * starting at once serialise on an advisory lock, and the second finds nothing left to do.
 */
export async function migrate(sql: Sql, dir: string = SQL_DIR): Promise<MigrationResult> {
  const files = (await readdir(dir)).filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f)).sort();
  // One connection for the whole run: the session-level lock belongs to it, and dies with it if the process does.
  const conn = await sql.reserve();
  try {
    await conn`select pg_advisory_lock(${MIGRATION_LOCK})`;
    await conn`
      create table if not exists schema_migrations (
        name text primary key,
        applied_at timestamptz not null default now()
      )`;
    const done = new Set((await conn<{ name: string }[]>`select name from schema_migrations`).map((r) => r.name));
    const applied: string[] = [];
    for (const file of files) {
      if (done.has(file)) continue;
      const text = await Bun.file(join(dir, file)).text();
      await conn.unsafe("begin");
      try {
        await conn.unsafe(text);
        await conn`insert into schema_migrations (name) values (${file})`;
        await conn.unsafe("commit");
      } catch (error) {
        await conn.unsafe("rollback");
        throw new Error(`migration ${file} failed: ${(error as Error).message}`);
      }
      applied.push(file);
      log.info("migration applied", { file });
    }
    // Under the same lock: two processes migrating a fresh database at once make one key, not two.
    if (dir === SQL_DIR) await createFirstSigningKey(conn);
    return { applied, current: files.at(-1) ?? null };
  } finally {
    await conn`select pg_advisory_unlock(${MIGRATION_LOCK})`.catch(() => {});
    conn.release();
  }
}

/**
 * The licence API signs every answer (docs/licence-api.md#signed-answers): a database without a signing key gets its
 * first one here, since PostgreSQL cannot make Ed25519 keys itself. Nothing about the key is logged or returned.
 */
async function createFirstSigningKey(conn: Sql): Promise<void> {
  const [existing] = await conn`select 1 from signing_keys limit 1`;
  if (existing) return;
  const pair = newKeyPair();
  await conn`
    insert into signing_keys (key_id, public_key, private_key)
    values (${pair.keyId}, ${pair.publicKey}, ${pair.seed})`;
  pair.seed.fill(0);
  log.info("signing key created", { keyId: pair.keyId });
}
