import { createHash } from "node:crypto";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { log } from "../lib/log.ts";
import type { ShopDeps } from "./deps.ts";
import { invalid } from "./errors.ts";
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

/**
 * Stores a product's build (the loader zip) under DATA_DIR/builds. The new file is written beside the old one and
 * renamed into place, then recorded; the old file is removed only after the database points at the new one, so a
 * buyer being served at that moment never gets half a file.
 */
export function createBuilds(deps: ShopDeps, products: Products) {
  const dir = resolve(deps.config.dataDir, "builds");

  async function store(productId: number, bytes: Uint8Array, originalName: string) {
    if (bytes.length === 0) throw invalid("Файл пуст", "build");
    if (bytes.length > MAX_BUILD_BYTES)
      throw invalid("Файл больше 50 МБ: Telegram не отправит его покупателю", "build");
    if (!looksLikeZip(bytes.subarray(0, 4)))
      throw invalid("Это не zip-архив (проверено по содержимому файла)", "build");
    const product = await products.byId(productId);
    if (!product) throw invalid("Продукт не найден", "product");
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    await mkdir(dir, { recursive: true });
    const path = join(dir, `${productId}-${sha256.slice(0, 16)}-${Date.now()}.zip`);
    const partial = `${path}.part`;
    await Bun.write(partial, bytes);
    await rename(partial, path);
    const name = buildFileName(originalName, product.name);
    try {
      const { previousPath } = await products.setBuild(productId, { path, name, size: bytes.length, sha256 });
      if (previousPath && previousPath !== path) await rm(previousPath, { force: true });
    } catch (error) {
      await rm(path, { force: true });
      throw error;
    }
    log.info("build stored", { productId, size: bytes.length, sha256 });
    return { path, name, size: bytes.length, sha256 };
  }

  /** Stores a build from a file on disk (the CLI's build:upload). */
  async function storeFile(productId: number, filePath: string) {
    const info = await stat(filePath).catch(() => null);
    if (!info?.isFile()) throw invalid(`Файл не найден: ${filePath}`, "path");
    if (info.size > MAX_BUILD_BYTES) throw invalid("Файл больше 50 МБ: Telegram не отправит его покупателю", "build");
    const bytes = new Uint8Array(await Bun.file(filePath).arrayBuffer());
    return await store(productId, bytes, filePath);
  }

  return { store, storeFile };
}

export type Builds = ReturnType<typeof createBuilds>;
