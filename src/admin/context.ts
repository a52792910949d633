import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config.ts";
import { log } from "../lib/log.ts";
import type { Shop } from "../shop/index.ts";

export const STATIC_DIR = join(import.meta.dir, "..", "..", "static");

/**
 * Everything the panel's controllers share, built once per shop: the domain, and the facts derived from the
 * configuration (URL prefix, cookie scope, secret, static file versions).
 */
export type PanelContext = {
  shop: Shop;
  config: Config;
  /** BASE_PATH percent-encoded, as browsers send it and as links and the cookie Path must carry it. */
  base: string;
  /** Path attribute of the panel cookies: the panel and nothing else on the host. */
  cookiePath: string;
  /** Cookies marked Secure when the shop is served over HTTPS. */
  secure: boolean;
  /** Signs sessions and CSRF tokens. */
  secret: string;
  /** Static file name → URL with a content hash, so files can be cached for a year. */
  assets: Record<string, string>;
  /** Public origin + base path, for URLs the owner copies (the auth API). */
  publicBase: string;
};

const contexts = new WeakMap<Shop, WeakMap<Config, PanelContext>>();

/** The panel context of a shop and its configuration; the panel and plugins built on panelGuard share one. */
export function panelContext(shop: Shop, config: Config): PanelContext {
  let byConfig = contexts.get(shop);
  if (!byConfig) {
    byConfig = new WeakMap();
    contexts.set(shop, byConfig);
  }
  const existing = byConfig.get(config);
  if (existing) return existing;
  const base = encodeURI(config.basePath);
  let secret = config.sessionSecret;
  if (!secret) {
    // main.ts and dev.ts always provide one; this only keeps a misconfigured process from signing with nothing.
    secret = randomBytes(32).toString("base64url");
    log.warn("SESSION_SECRET is not set: panel sessions end when the process restarts");
  }
  const context: PanelContext = {
    shop,
    config,
    base,
    cookiePath: base || "/",
    secure: config.publicUrl.startsWith("https:"),
    secret,
    assets: staticAssets(base),
    publicBase: `${config.publicUrl}${base}`,
  };
  byConfig.set(config, context);
  return context;
}

/** Files of static/ with a short content hash in their URL (read once at start; the files ship with the code). */
function staticAssets(base: string): Record<string, string> {
  const out: Record<string, string> = {};
  let names: string[] = [];
  try {
    names = readdirSync(STATIC_DIR).filter((n) => /^[\w.-]+\.(js|css|svg|png|ico|woff2)$/.test(n));
  } catch {
    log.warn("static/ is missing: run `bun install` (it copies htmx.min.js there)");
  }
  for (const name of names) {
    const hash = createHash("sha256")
      .update(readFileSync(join(STATIC_DIR, name)))
      .digest("hex")
      .slice(0, 10);
    out[name] = `${base}/static/${name}?v=${hash}`;
  }
  return out;
}
