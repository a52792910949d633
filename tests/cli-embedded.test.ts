import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanEnv, runToEnd } from "./helpers/process.ts";

/** `bun src/cli.ts …` with no DATABASE_URL or REDIS_URL: the embedded PGlite of `bun run dev` in dataDir. */
async function cli(args: string[], dataDir: string) {
  return runToEnd(["bun", "src/cli.ts", ...args], cleanEnv({ DATA_DIR: dataDir }));
}

test("the CLI uses the embedded database of `bun run dev` in DATA_DIR, and refuses while it is in use", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "mph-cli-embedded-"));
  try {
    const add = await cli(["product:add", "Local"], dataDir);
    expect(add.code).toBe(0);
    expect(add.err).toContain("using the embedded development database");
    const gen = await cli(["keys:generate", "Local", "1", "2"], dataDir);
    expect(gen.code).toBe(0);
    expect(gen.out.trim().split("\n")).toHaveLength(2);

    // A live process holds the lock (as `bun run dev` does while it runs): the CLI stays out.
    writeFileSync(join(dataDir, "pglite.lock"), String(process.pid));
    const busy = await cli(["keys:generate", "Local", "1", "2"], dataDir);
    expect(busy.code).toBe(1);
    expect(busy.err).toContain(`error: the embedded database is in use by process ${process.pid}`);
    expect(busy.out).toBe("");
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 90_000);
