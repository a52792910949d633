import { createHash, randomUUID } from "node:crypto";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { log } from "../../lib/log.ts";
import type { ShopDeps } from "../deps.ts";
import { invalid } from "../errors.ts";
import type { Products } from "./products.ts";

/** Telegram bots cannot send files over 50 MB, so a bigger build could never reach a buyer. */
export const MAX_BUILD_BYTES = 50 * 1024 * 1024;
const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

/** A zip is recognised by its first bytes, never by its name or declared type. */
export function looksLikeZip(head: Uint8Array): boolean {
  return ZIP_MAGIC.every((b, i) => head[i] === b);
}

/** A file name safe to show and to send to Telegram: no path, no control characters, ends in .zip. */
export function buildFileName(original: string, productName: string): string {
  const base = (original.split(/[\\/]/).pop() ?? "")
    // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
    .replace(/[\u0000-\u001f\u007f"]/g, "")
    .trim()
    .slice(0, 100);
  const name = base || `${productName.replace(/[^\p{L}\p{N}._-]+/gu, "_")}.zip`;
  return name.toLowerCase().endsWith(".zip") ? name : `${name}.zip`;
}

const TOO_BIG = "Файл больше 50 МБ: Telegram не отправит его покупателю";
const NOT_ZIP = "Это не zip-архив (проверено по содержимому файла)";

export type StoredBuild = { path: string; name: string; size: number; sha256: string };

/** What is stored per chunk row (build_chunks): big enough that a 50 MB build is 50 rows, small enough to hold. */
export const BUILD_CHUNK_BYTES = 1024 * 1024;

/**
 * Regroups a stream's chunks (any size) into BUILD_CHUNK_BYTES pieces, each handed to `write` as it fills; `end`
 * writes the last, shorter one. Holds at most one piece.
 */
function inPieces(write: (piece: Buffer) => Promise<unknown>) {
  let pending: Uint8Array[] = [];
  let bytes = 0;
  const flush = async () => {
    if (bytes === 0) return;
    const piece = Buffer.concat(pending, bytes);
    pending = [];
    bytes = 0;
    await write(piece);
  };
  return {
    async push(chunk: Uint8Array): Promise<void> {
      for (let at = 0; at < chunk.byteLength; ) {
        // A copy: the source may reuse its buffer for the next chunk.
        const part = chunk.slice(at, at + BUILD_CHUNK_BYTES - bytes);
        pending.push(part);
        bytes += part.byteLength;
        at += part.byteLength;
        if (bytes === BUILD_CHUNK_BYTES) await flush();
      }
    },
    end: flush,
  };
}

/** How long an upload may take before its chunks, recorded by no product, count as left behind by a crash. */
const ABANDONED_AFTER = "1 day";

/**
 * A product's build (the loader zip). Its bytes live in PostgreSQL (build_chunks), so every app process on every
 * server can deliver it and the database's backups and replicas carry it (docs/scaling.md#builds); each process
 * keeps a copy under its own DATA_DIR/builds, fetched from the database when missing (localCopy), since Telegram
 * takes a file from disk. An upload is written to the database and to this process's copy as the bytes arrive,
 * never held whole in memory (eight 50 MB uploads at once must not cost 400 MB), and checked as they come: the first
 * four must be a zip's, and the total may not pass 50 MB — either refusal stops reading at once. The product is
 * pointed at the new build only once all of it is stored; the old one is removed after, so a buyer being served at
 * that moment never gets half a file.
 */
export function createBuilds(deps: ShopDeps, products: Products) {
  const { sql } = deps;
  const dir = resolve(deps.config.dataDir, "builds");

  async function store(
    productId: number,
    content: Uint8Array | AsyncIterable<Uint8Array>,
    originalName: string,
  ): Promise<StoredBuild> {
    const product = await products.byId(productId);
    if (!product) throw invalid("Продукт не найден", "product");
    await mkdir(dir, { recursive: true });
    // Named before the first byte: the chunks are recorded under this name as they come.
    const build = `${productId}-${Date.now()}-${randomUUID().slice(0, 8)}.zip`;
    const path = join(dir, build);
    const partial = `${path}.part`;
    const hash = createHash("sha256");
    const head = new Uint8Array(ZIP_MAGIC.length);
    let size = 0;
    let seq = 0;
    const pieces = inPieces(
      (data) => sql`insert into build_chunks (build, seq, data) values (${build}, ${seq++}, ${data})`,
    );
    const file = await open(partial, "w");
    try {
      for await (const chunk of content instanceof Uint8Array ? [content] : content) {
        if (chunk.byteLength === 0) continue;
        // Throwing here ends the loop, and with it the source: an HTTP upload is not read any further.
        if (size + chunk.byteLength > MAX_BUILD_BYTES) throw invalid(TOO_BIG, "build");
        if (size < head.length) {
          head.set(chunk.subarray(0, head.length - size), size);
          if (size + chunk.byteLength >= head.length && !looksLikeZip(head)) throw invalid(NOT_ZIP, "build");
        }
        size += chunk.byteLength;
        hash.update(chunk);
        await file.write(chunk);
        await pieces.push(chunk);
      }
      if (size === 0) throw invalid("Файл пуст", "build");
      if (size < head.length) throw invalid(NOT_ZIP, "build");
      await pieces.end();
      await file.sync();
    } catch (error) {
      await file.close().catch(() => {});
      await rm(partial, { force: true });
      await sql`delete from build_chunks where build = ${build}`.catch(() => {});
      throw error;
    }
    await file.close();
    const sha256 = hash.digest("hex");
    await rename(partial, path);
    const name = buildFileName(originalName, product.name);
    try {
      const { previousPath } = await products.setBuild(productId, { path, name, size, sha256 });
      if (previousPath && previousPath !== path) {
        await sql`delete from build_chunks where build = ${basename(previousPath)}`;
        await rm(previousPath, { force: true });
      }
    } catch (error) {
      await rm(path, { force: true });
      await sql`delete from build_chunks where build = ${build}`.catch(() => {});
      throw error;
    }
    // Chunks of uploads that a crash cut short: no product points at them, and no upload takes a day.
    await sql`
      delete from build_chunks c
      where c.created_at < now() - ${ABANDONED_AFTER}::interval
        and not exists (select 1 from products p where p.build_path like '%/' || c.build)`;
    log.info("build stored", { productId, size, sha256 });
    return { path, name, size, sha256 };
  }

  /** Stores a build from a file on disk (the CLI's build:upload), read as a stream like an upload. */
  async function storeFile(productId: number, filePath: string): Promise<StoredBuild> {
    const info = await stat(filePath).catch(() => null);
    if (!info?.isFile()) throw invalid(`Файл не найден: ${filePath}`, "path");
    if (info.size > MAX_BUILD_BYTES) throw invalid(TOO_BIG, "build");
    return await store(productId, chunksOf(Bun.file(filePath).stream()), filePath);
  }

  // One fetch per build at a time in this process: deliveries of the same build wait for the first one's copy.
  const fetching = new Map<string, Promise<string | null>>();

  /**
   * This process's copy of a build, as a path to hand to Telegram: the file under DATA_DIR/builds if it is there
   * whole, else fetched from the database chunk by chunk (another server took the upload, or this one was restored
   * or replaced). Null when the database holds no such build either (recorded before builds were kept there, and
   * this server never had the file).
   */
  function localCopy(build: { path: string; size?: number; sha256: string }): Promise<string | null> {
    const name = basename(build.path);
    const path = join(dir, name);
    let running = fetching.get(name);
    if (!running) {
      running = copyFromDatabase(name, path, build.sha256).finally(() => fetching.delete(name));
      fetching.set(name, running);
    }
    return running;
  }

  async function copyFromDatabase(name: string, path: string, sha256: string): Promise<string | null> {
    if (await Bun.file(path).exists()) return path;
    const [count] = await sql<
      { chunks: number }[]
    >`select count(*)::int as chunks from build_chunks where build = ${name}`;
    if (!count || count.chunks === 0) return null;
    await mkdir(dir, { recursive: true });
    const partial = `${path}.${randomUUID().slice(0, 8)}.part`;
    const hash = createHash("sha256");
    const file = await open(partial, "w");
    try {
      for (let seq = 0; seq < count.chunks; seq++) {
        const [row] = await sql<
          { data: Buffer }[]
        >`select data from build_chunks where build = ${name} and seq = ${seq}`;
        if (!row) throw new Error(`build ${name}: chunk ${seq} of ${count.chunks} is missing`);
        hash.update(row.data);
        await file.write(row.data);
      }
      await file.sync();
      await file.close();
      const got = hash.digest("hex");
      if (got !== sha256) throw new Error(`build ${name}: the copy's sha256 is ${got}, the product records ${sha256}`);
      // Another process on this server (same DATA_DIR) may have finished the same copy first: either is whole.
      await rename(partial, path);
      log.info("build copied from the database", { build: name });
      return path;
    } catch (error) {
      await file.close().catch(() => {});
      await rm(partial, { force: true });
      throw error;
    }
  }

  /**
   * Builds recorded before they were kept in the database live only in this server's DATA_DIR: put them there now
   * (at start-up), so that every other process can deliver them too. Each is read from disk as a stream.
   */
  async function adoptLocalFiles(): Promise<number> {
    const rows = await sql<{ id: string; build_path: string; build_sha256: string }[]>`
      select id, build_path, build_sha256 from products p
      where build_path is not null
        and not exists (select 1 from build_chunks c where c.build = reverse(split_part(reverse(p.build_path), '/', 1)))`;
    let adopted = 0;
    for (const row of rows) {
      const name = basename(row.build_path);
      const path = (await Bun.file(row.build_path).exists()) ? row.build_path : join(dir, name);
      if (!(await Bun.file(path).exists())) continue;
      let seq = 0;
      const hash = createHash("sha256");
      await sql
        .begin(async (tx) => {
          const pieces = inPieces(
            // Another process of this server may be adopting the same file at the same moment: one copy is enough.
            (data) => tx`
              insert into build_chunks (build, seq, data) values (${name}, ${seq++}, ${data})
              on conflict (build, seq) do nothing`,
          );
          for await (const chunk of chunksOf(Bun.file(path).stream())) {
            hash.update(chunk);
            await pieces.push(chunk);
          }
          await pieces.end();
          // A file that is not the recorded build (changed on disk) is not adopted: the transaction is undone.
          if (hash.digest("hex") !== row.build_sha256) throw new Error(`build ${name} on disk differs from its record`);
        })
        .then(
          () => {
            adopted++;
            log.info("build adopted into the database", { productId: Number(row.id), build: name });
          },
          (error: unknown) => log.error("build could not be adopted into the database", { build: name, error }),
        );
    }
    return adopted;
  }

  return { store, storeFile, localCopy, adoptLocalFiles };
}

export type Builds = ReturnType<typeof createBuilds>;

/** A web stream's chunks for `for await`; leaving the loop early cancels the stream. */
export async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let done = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) {
        done = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!done) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
