import { createHash, randomUUID } from "node:crypto";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
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

/**
 * Stores a product's build (the loader zip) under DATA_DIR/builds. The bytes are written to a file as they arrive,
 * never held whole in memory (eight 50 MB uploads at once must not cost 400 MB), and checked as they come: the
 * first four must be a zip's, and the total may not pass 50 MB — either refusal stops reading at once. The new file
 * is then renamed into place and recorded; the old file is removed only after the database points at the new one,
 * so a buyer being served at that moment never gets half a file.
 */
export function createBuilds(deps: ShopDeps, products: Products) {
  const dir = resolve(deps.config.dataDir, "builds");

  async function store(
    productId: number,
    content: Uint8Array | AsyncIterable<Uint8Array>,
    originalName: string,
  ): Promise<StoredBuild> {
    const product = await products.byId(productId);
    if (!product) throw invalid("Продукт не найден", "product");
    await mkdir(dir, { recursive: true });
    const partial = join(dir, `${productId}-${randomUUID()}.part`);
    const hash = createHash("sha256");
    const head = new Uint8Array(ZIP_MAGIC.length);
    let size = 0;
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
      }
      if (size === 0) throw invalid("Файл пуст", "build");
      if (size < head.length) throw invalid(NOT_ZIP, "build");
      await file.sync();
    } catch (error) {
      await file.close().catch(() => {});
      await rm(partial, { force: true });
      throw error;
    }
    await file.close();
    const sha256 = hash.digest("hex");
    const path = join(dir, `${productId}-${sha256.slice(0, 16)}-${Date.now()}.zip`);
    await rename(partial, path);
    const name = buildFileName(originalName, product.name);
    try {
      const { previousPath } = await products.setBuild(productId, { path, name, size, sha256 });
      if (previousPath && previousPath !== path) await rm(previousPath, { force: true });
    } catch (error) {
      await rm(path, { force: true });
      throw error;
    }
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

  return { store, storeFile };
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
