/**
 * The README's first command on a fresh checkout: `bun run dev` with nothing configured runs the whole shop on
 * PGlite and an in-process cache, prints the panel's address with a generated login, and that login opens the panel.
 */
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanEnv, type Started, start } from "./helpers/process.ts";
import { freePort } from "./helpers/servers.ts";

// PGlite's first start (creating its data directory) takes seconds on a loaded machine: hang protection only.
setDefaultTimeout(60_000);

const dataDir = mkdtempSync(join(tmpdir(), "mph-dev-"));
let dev: Started | null = null;

afterAll(async () => {
  if (dev && dev.proc.exitCode === null) {
    dev.proc.kill("SIGKILL");
    await dev.proc.exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

test("`bun run dev` with nothing configured serves the login page, and the printed login opens the panel", async () => {
  const port = freePort();
  dev = start(["bun", "src/dev.ts"], cleanEnv({ PORT: String(port), DATA_DIR: dataDir }));
  const panelLine = await dev.waitFor(/^\s+panel:\s+http/, 45_000);
  const url = panelLine.split(/\s+/).find((part) => part.startsWith("http"))!;
  expect(url).toBe(`http://127.0.0.1:${port}/Morpheus%20Private/`);
  const login = (await dev.waitFor(/^\s+login:\s+/)).trim().split(/\s+/)[1]!;
  const password = (await dev.waitFor(/^\s+password:\s+/)).trim().split(/\s+/)[1]!;
  expect(dev.stdout.join("\n")).toContain("embedded PGlite");

  const page = await fetch(url);
  expect(page.status).toBe(200);
  const html = await page.text();
  expect(html).toContain("<title>Вход — Morpheus Shop</title>");
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
  const cookie = page.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .join("; ");
  const answer = await fetch(`${url}login`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie },
    body: new URLSearchParams({ login, password, _csrf: csrf }).toString(),
  });
  expect(answer.status).toBe(303);
  const session = answer.headers.getSetCookie().find((c) => /HttpOnly/i.test(c));
  expect(session).toBeDefined();
  const dashboard = await fetch(url, { headers: { cookie: session!.split(";")[0]! } });
  expect(dashboard.status).toBe(200);
  expect(await dashboard.text()).toContain("Главная");

  // Stopping it is clean: SIGTERM → exit 0.
  dev.proc.kill("SIGTERM");
  expect(await dev.proc.exited).toBe(0);
});
