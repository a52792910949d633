import { chromium, type Page } from "playwright-core";

/**
 * The installed panel in Debian's headless chromium, through Caddy and under Caddy's Content-Security-Policy (the
 * panel's own browser test talks to the app directly, without that policy). Run by tests/setup/e2e.sh after
 * setup.sh has installed the shop:
 *
 *   bun tests/setup/panel-browser.ts https://shop.test/Morpheus%20Private/ LOGIN PASSWORD PRODUCT DESCRIPTION
 *
 * It logs in with the printed credentials through the form (an htmx post answered with HX-Redirect), follows boosted
 * links to the product's page and saves DESCRIPTION there (an htmx post with the session's CSRF token; the caller
 * checks the database). It fails on any CSP violation, page error, or file that did not load, one line for each.
 */

const CHROMIUM = "/usr/bin/chromium";
const [url, login, password, product, description] = process.argv.slice(2);
if (!url || !login || !password || !product || !description) {
  console.error("usage: bun tests/setup/panel-browser.ts PANEL_URL LOGIN PASSWORD PRODUCT DESCRIPTION");
  process.exit(2);
}

const problems: string[] = [];
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--no-proxy-server",
  ],
});

/** What the page itself can tell: htmx running, the stylesheet applied. */
async function pageState(page: Page) {
  return await page.evaluate(() => ({
    htmx: typeof (window as unknown as { htmx?: unknown }).htmx === "object",
    css: Array.from(document.styleSheets).some((s) => {
      try {
        return (s.href ?? "").includes("/static/panel") && s.cssRules.length > 0;
      } catch {
        // A sheet the browser refused to load has no readable rules.
        return false;
      }
    }),
  }));
}

try {
  // The chain was verified against pebble's root with curl before; chromium has its own trust store.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: "ru-RU" });
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      console.error(
        `CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`,
      );
    });
  });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const where = message.location().url;
    // The browser asks for /favicon.ico by itself; outside the panel's path Caddy answers 404, as it should.
    if (new URL(where || url).pathname === "/favicon.ico") return;
    problems.push(`console: ${message.text()} (${where})`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("dialog", (dialog) => {
    problems.push(`unexpected dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on("requestfailed", (request) =>
    problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`),
  );
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} for ${response.url()}`);
  });

  await page.goto(url, { waitUntil: "load" });
  await page.locator("#login-form").waitFor({ timeout: 15_000 });
  const onLogin = await pageState(page);
  if (!onLogin.htmx) problems.push("login page: htmx did not load");
  if (!onLogin.css) problems.push("login page: panel.css did not apply");

  await page.fill("#f-login", login);
  await page.fill("#f-password", password);
  await page.click("#login-form button[type=submit]");
  await page.locator("main h1", { hasText: "Главная" }).waitFor({ timeout: 15_000 });
  const cookie = (await context.cookies()).find((c) => c.name === "mph_session");
  if (!cookie?.secure || !cookie.httpOnly || cookie.sameSite !== "Strict") {
    problems.push(`session cookie is not Secure + HttpOnly + SameSite=Strict: ${JSON.stringify(cookie)}`);
  }

  // Boosted links: htmx fetches the page and swaps the body.
  await page.locator("nav.tabs a", { hasText: "Продукты" }).click();
  await page.locator("main h1", { hasText: "Продукты" }).waitFor({ timeout: 15_000 });
  await page.locator("main a", { hasText: product }).first().click();
  await page.locator("main h1", { hasText: product }).waitFor({ timeout: 15_000 });
  const afterSwaps = await pageState(page);
  if (!afterSwaps.htmx || !afterSwaps.css) problems.push("product page: htmx or panel.css missing after the swaps");

  // An htmx post with the session's CSRF token: the description form is answered in place.
  await page.fill("#description textarea", description);
  await page.click("#description button[type=submit]");
  await page.locator("#description", { hasText: "Описание сохранено" }).waitFor({ timeout: 15_000 });

  console.log(`browser: logged in, opened the product page, saved its description; ${problems.length} problem(s)`);
} catch (error) {
  problems.push(`walk failed: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`);
} finally {
  await browser.close();
}

for (const problem of problems) console.log(`problem: ${problem}`);
process.exit(problems.length === 0 ? 0 : 1);
