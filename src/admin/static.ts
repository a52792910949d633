import { join } from "node:path";
import { Elysia } from "elysia";
import type { PanelContext } from "./context.ts";
import { STATIC_DIR } from "./context.ts";

const TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  woff2: "font/woff2",
};

/**
 * static/ under BASE_PATH/static/. Only the files found at start are served (no path ever reaches the disk from
 * the URL), and for a year: their URLs carry a content hash, so a new version is a new URL.
 */
export function staticFiles(panel: PanelContext) {
  return new Elysia().get("/static/:name", ({ params }) => {
    const name = params.name;
    // Own keys only: `in` would also find "constructor" or "__proto__" on the prototype and open a file that is not there.
    if (!Object.hasOwn(panel.assets, name)) return new Response("Not found", { status: 404 });
    const extension = name.slice(name.lastIndexOf(".") + 1);
    return new Response(Bun.file(join(STATIC_DIR, name)), {
      headers: {
        "content-type": TYPES[extension] ?? "application/octet-stream",
        "cache-control": "public, max-age=31536000, immutable",
        "x-content-type-options": "nosniff",
      },
    });
  });
}
