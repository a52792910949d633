import { expect } from "bun:test";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import type { TestShop } from "../helpers/shop.ts";

/**
 * What the browser tests share: Debian's headless chromium, a page that records every dialog and script error,
 * screenshots at 1280 and 390 px that also prove the page does not scroll sideways on a phone, and the panel's
 * login as the operator gets it.
 */

const CHROMIUM = "/usr/bin/chromium";
export const ARTIFACTS = join(import.meta.dir, "..", "artifacts");
export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  await mkdir(ARTIFACTS, { recursive: true });
  return await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/** What a page showed besides itself: confirm() texts (accepted), alert() texts (only injected script calls it), errors. */
export type Watched = { page: Page; confirms: string[]; alerts: string[]; errors: string[] };

export async function watchedPage(context: BrowserContext): Promise<Watched> {
  const page = await context.newPage();
  const watched: Watched = { page, confirms: [], alerts: [], errors: [] };
  page.on("dialog", async (dialog) => {
    if (dialog.type() === "alert") watched.alerts.push(dialog.message());
    if (dialog.type() === "confirm") watched.confirms.push(dialog.message());
    await dialog.accept();
  });
  page.on("pageerror", (error) => watched.errors.push(error.message));
  return watched;
}

/** The page's width against the window's: a page that scrolls sideways on a phone is broken there. */
export async function sidewaysOverflow(page: Page): Promise<{ scrollWidth: number; innerWidth: number }> {
  return await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
}

/**
 * Screenshots of the page as it is, desktop and 390 px wide, into tests/artifacts/; at 390 px it must not scroll
 * sideways (scrollWidth ≤ innerWidth), which is asserted with the page's name.
 */
export async function shoot(page: Page, name: string): Promise<void> {
  // From the top: a full-page shot of a scrolled page would draw the sticky tab bar mid-page.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: join(ARTIFACTS, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  // Let the layout settle at the new width (the tab bar recentres itself on resize).
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
  const { scrollWidth, innerWidth } = await sidewaysOverflow(page);
  await page.screenshot({ path: join(ARTIFACTS, `${name}-390.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
  expect({ page: name, scrollWidth }).toEqual({ page: name, scrollWidth: Math.min(scrollWidth, innerWidth) });
}

/** Clicks a tab in the top navigation (a boosted link: htmx swaps the body) and waits for its heading. */
export async function openTab(page: Page, label: string, heading = label): Promise<void> {
  // Marks the page being left, so a click on the tab already open still waits for the new page, not the old one.
  await page.evaluate(() => document.querySelector("main")?.setAttribute("data-leaving", ""));
  await page.locator("nav.tabs a", { hasText: label }).click();
  await page.locator("main:not([data-leaving]) h1", { hasText: heading }).waitFor();
}

/** Waits until an element matching `selector` shows `hasText`. */
export async function see(page: Page, selector: string, hasText: string | RegExp): Promise<void> {
  await page.locator(selector, { hasText }).first().waitFor({ timeout: 10_000 });
}

/** The panel login as the operator gets it: printed by `bun run cli admin:reset`, run as a real process. */
export async function credentials(t: TestShop): Promise<{ login: string; password: string }> {
  const cli = join(import.meta.dir, "..", "..", "src", "cli.ts");
  const proc = Bun.spawn(["bun", cli, "admin:reset", "admin"], {
    env: {
      ...process.env,
      DATABASE_URL: t.databaseUrl,
      REDIS_URL: t.redisUrl,
      REDIS_PREFIX: t.redisPrefix,
      LOG_LEVEL: "error",
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  const login = /^login: (\S+)$/m.exec(out)?.[1];
  const password = /^password: (\S+)$/m.exec(out)?.[1];
  if (code !== 0 || !login || !password) throw new Error(`admin:reset failed (${code}): ${out}\n${err}`);
  return { login, password };
}

/** A shop listening on a free loopback port for the browser; the panel's address. */
export function listen(t: TestShop): { origin: string; panelUrl: string } {
  t.app.listen({ hostname: "127.0.0.1", port: 0 });
  const origin = `http://127.0.0.1:${t.app.server!.port}`;
  return { origin, panelUrl: `${origin}/Morpheus%20Private/` };
}

/** Logs in through the login form and waits for the dashboard. */
export async function logIn(page: Page, panelUrl: string, account: { login: string; password: string }) {
  await page.goto(panelUrl);
  await page.fill("#f-login", account.login);
  await page.fill("#f-password", account.password);
  await page.click("#login-form button[type=submit]");
  await page.locator("main h1", { hasText: "Главная" }).waitFor();
}

/** A small valid zip archive (one stored file), as a loader build would be. */
export function zipFile(): Uint8Array<ArrayBuffer> {
  const name = new TextEncoder().encode("Loader.exe");
  const content = new TextEncoder().encode("MZ fake loader");
  const crc = Bun.hash.crc32(content);
  const local = new Uint8Array(30 + name.length + content.length);
  const lv = new DataView(local.buffer);
  lv.setUint32(0, 0x04034b50, true);
  lv.setUint16(4, 20, true);
  lv.setUint32(14, crc, true);
  lv.setUint32(18, content.length, true);
  lv.setUint32(22, content.length, true);
  lv.setUint16(26, name.length, true);
  local.set(name, 30);
  local.set(content, 30 + name.length);
  const central = new Uint8Array(46 + name.length);
  const cv = new DataView(central.buffer);
  cv.setUint32(0, 0x02014b50, true);
  cv.setUint16(4, 20, true);
  cv.setUint16(6, 20, true);
  cv.setUint32(16, crc, true);
  cv.setUint32(20, content.length, true);
  cv.setUint32(24, content.length, true);
  cv.setUint16(28, name.length, true);
  central.set(name, 46);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, 1, true);
  ev.setUint16(10, 1, true);
  ev.setUint32(12, central.length, true);
  ev.setUint32(16, local.length, true);
  const out = new Uint8Array(local.length + central.length + end.length);
  out.set(local, 0);
  out.set(central, local.length);
  out.set(end, local.length + central.length);
  return out;
}
