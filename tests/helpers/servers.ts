import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import postgres from "postgres";

/**
 * Finds the PostgreSQL and Redis the tests run against: TEST_DATABASE_URL / TEST_REDIS_URL when set, else the
 * local defaults; when nothing answers, throwaway servers started from the installed binaries; else one line that
 * says what to install.
 */
export async function postgresAnswers(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

export async function redisAnswers(url: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 2_000,
    retryStrategy: () => null,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export function freePort(): number {
  const server = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = server.port!;
  server.stop(true);
  return port;
}

function findPostgresBin(): string | null {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(root, v, "bin", "initdb"))) return join(root, v, "bin");
  return null;
}

/** Starts a throwaway PostgreSQL in a temp dir; returns its URL and a stop function. */
export async function startThrowawayPostgres(): Promise<{ url: string; stop: () => void }> {
  const bin = findPostgresBin();
  if (!bin)
    throw new Error(
      "no PostgreSQL answers and none is installed: apt-get install postgresql (or set TEST_DATABASE_URL)",
    );
  const dir = mkdtempSync(join(tmpdir(), "mph-pg-"));
  const port = freePort();
  // initdb refuses to run as root; run the server as the postgres system user then.
  const asUser = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : [];
  if (asUser.length) Bun.spawnSync(["chown", "postgres", dir]);
  const init = Bun.spawnSync([...asUser, join(bin, "initdb"), "-D", dir, "-A", "trust", "-U", "postgres"], {
    stderr: "pipe",
  });
  if (init.exitCode !== 0) throw new Error(`initdb failed: ${init.stderr.toString().trim().split("\n").at(-1)}`);
  const proc = Bun.spawn(
    [...asUser, join(bin, "postgres"), "-D", dir, "-p", String(port), "-k", dir, "-h", "127.0.0.1"],
    {
      stdout: "ignore",
      stderr: "ignore",
    },
  );
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  for (let i = 0; i < 100 && !(await postgresAnswers(url)); i++) await Bun.sleep(100);
  return { url, stop: () => proc.kill() };
}

export async function startThrowawayRedis(): Promise<{ url: string; stop: () => void }> {
  const which = Bun.which("redis-server");
  if (!which)
    throw new Error("no Redis answers and none is installed: apt-get install redis-server (or set TEST_REDIS_URL)");
  const port = freePort();
  const proc = Bun.spawn([which, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdout: "ignore",
    stderr: "ignore",
  });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50 && !(await redisAnswers(url)); i++) await Bun.sleep(100);
  return { url, stop: () => proc.kill() };
}
