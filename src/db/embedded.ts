import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

export type EmbeddedDatabase = { url: string; stop: () => Promise<void> };

/** Thrown when another process (a running `bun run dev`, or a CLI command) has the embedded database open. */
export class EmbeddedDatabaseBusy extends Error {}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * PGlite keeps its files to one process: two processes opening the same directory would corrupt it. A lock file
 * holding the owner's pid keeps a second opener out; a lock left by a process that died is taken over.
 */
function claim(lockPath: string): () => void {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(lockPath, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number(readFileSync(lockPath, "utf8").trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new EmbeddedDatabaseBusy(
          `the embedded database is in use by process ${owner} (\`bun run dev\`?): stop it, or set DATABASE_URL`,
        );
      }
      rmSync(lockPath, { force: true });
    }
  }
  throw new EmbeddedDatabaseBusy(`cannot lock the embedded database (${lockPath})`);
}

/**
 * PGlite (Postgres compiled to WASM) served over the Postgres wire protocol on loopback, so `bun run dev` runs the
 * very same client and SQL as production with nothing installed. It serves one connection at a time: use pool max 1.
 */
export async function startEmbeddedDatabase(dataDir: string): Promise<EmbeddedDatabase> {
  const dir = join(dataDir, "pglite");
  await mkdir(dir, { recursive: true });
  const release = claim(join(dataDir, "pglite.lock"));
  try {
    const db = await PGlite.create(dir);
    const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0 });
    await server.start();
    const address = server.getServerConn();
    return {
      url: `postgres://postgres@${address}/postgres?sslmode=disable`,
      stop: async () => {
        await server.stop();
        await db.close();
        release();
      },
    };
  } catch (error) {
    release();
    throw error;
  }
}
