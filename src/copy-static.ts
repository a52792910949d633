// Runs after `bun install`: serves the pinned htmx from static/ so the panel needs no CDN and no build step.
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
mkdirSync(join(root, "static"), { recursive: true });
copyFileSync(join(root, "node_modules/htmx.org/dist/htmx.min.js"), join(root, "static/htmx.min.js"));
