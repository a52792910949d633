import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { escapeHtml } from "@kitajs/html";
import { ensureProduct, soldKey } from "./helpers/licence.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { runToEnd } from "./helpers/process.ts";
import { freePort } from "./helpers/servers.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database, starting servers and a kit process can take seconds.
setDefaultTimeout(60_000);

/**
 * The product page's API section (docs/panel.md#products) as the owner uses it: the address, the public key to pin
 * (base64 and PEM), and the kits' command lines, which really check a licence when pasted into a shell.
 */

let t: TestShop;
let c: PanelClient;
let base: string;

beforeAll(async () => {
  // Served on the port PUBLIC_URL names, so the address the page shows is one a kit can call.
  const port = freePort();
  t = await createTestShop({ publicUrl: `http://127.0.0.1:${port}` });
  t.app.listen({ hostname: "127.0.0.1", port });
  base = `http://127.0.0.1:${port}`;
  const { password } = await t.shop.accounts.reset("admin");
  c = new PanelClient(t);
  await c.login("admin", password);
});
afterAll(async () => {
  await t.app.stop(true);
  await t.close();
});

async function productPage(name: string): Promise<string> {
  const product = await ensureProduct(t, name);
  const page = await c.page(`/products/${product.id}`);
  expect(page.status).toBe(200);
  return page.html;
}

/** The text of the element with this id, as the copy button copies it (tags gone, entities decoded). */
function copied(html: string, id: string): string {
  const match = new RegExp(`<(code|pre) id="${id}"[^>]*>([\\s\\S]*?)</\\1>`).exec(html);
  if (!match) throw new Error(`no #${id} on the page`);
  const named: Record<string, string> = { lt: "<", gt: ">", quot: '"', amp: "&", apos: "'" };
  return match[2]!.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (entity, name: string) => {
    if (name.startsWith("#x") || name.startsWith("#X")) return String.fromCodePoint(Number.parseInt(name.slice(2), 16));
    if (name.startsWith("#")) return String.fromCodePoint(Number(name.slice(1)));
    return named[name] ?? entity;
  });
}

describe("the API section of a product's page", () => {
  test("shows the address, the key id, the public key in base64 and PEM, and the three kits' command lines", async () => {
    const html = await productPage("Stalcraft");
    const [key] = t.shop.signing.activeKeys();
    expect(copied(html, "api-url")).toBe(`${base}/Morpheus%20Private/api/Stalcraft/auth`);
    expect(html).toContain(`ID ключа: <code>${key!.keyId}</code>`);
    expect(copied(html, "public-key")).toBe(key!.publicKey);
    expect(copied(html, "public-key-pem")).toBe(key!.pem.trimEnd());
    const args = `'${base}/Morpheus%20Private/api/Stalcraft/auth' 'КЛЮЧ' 'HWID' '${key!.publicKey}'`;
    expect(copied(html, "kit-c")).toBe(`make -C clients/c && clients/c/loader_auth ${args}`);
    expect(copied(html, "kit-python")).toBe(`python3 clients/python/loader_auth.py ${args}`);
    expect(copied(html, "kit-typescript")).toBe(`bun clients/typescript/loader-auth.ts ${args}`);
    for (const id of ["api-url", "public-key", "public-key-pem", "kit-c", "kit-python", "kit-typescript"]) {
      expect(html).toContain(`data-copy="#${id}"`);
    }
  });

  test("the TypeScript kit's line, pasted into a shell with a real key and HWID, checks the licence", async () => {
    const name = "Мой 'Продукт'";
    const html = await productPage(name);
    const key = await soldKey(t, name, 7);
    const line = copied(html, "kit-typescript").replace("'КЛЮЧ'", `'${key}'`).replace("'HWID'", "'PC-PASTED'");
    const run = await runToEnd(["sh", "-c", line], process.env);
    expect(run.err).toBe("");
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/^days: 6\nhours: 23\nexpires_at: /);
    const [row] = await t.sql`select hwid from keys where key = ${key}`;
    expect(row!.hwid).toBe("PC-PASTED");
  });

  test("a product name with markup is shown as text, in the address and in every command line", async () => {
    const name = `<img src=x onerror=alert(1)>'"`;
    const html = await productPage(name);
    expect(html).not.toContain("<img src=x");
    const url = copied(html, "api-url");
    expect(url).toBe(`${base}/Morpheus%20Private/api/${encodeURIComponent(name)}/auth`);
    // The quote in the name stays inside one shell argument.
    expect(copied(html, "kit-c")).toContain(`'${url.replaceAll("'", `'\\''`)}'`);
    expect(html).toContain(escapeHtml(name));
  });

  test("during a rotation it shows the newest key and names the old one still signing; after retiring, only the new", async () => {
    const [old] = t.shop.signing.activeKeys();
    const added = await t.shop.signing.rotate();
    let html = await productPage("Stalcraft");
    expect(copied(html, "public-key")).toBe(added.publicKey);
    expect(html).toContain("Идёт смена ключа");
    expect(copied(html, `retire-${old!.keyId}`)).toBe(`bun run cli api:retire-key ${old!.keyId}`);
    await t.shop.signing.retire(old!.keyId);
    html = await productPage("Stalcraft");
    expect(copied(html, "public-key")).toBe(added.publicKey);
    expect(html).not.toContain("Идёт смена ключа");
    expect(html).not.toContain(old!.keyId);
  });

  test("no private key is on the page", async () => {
    await t.shop.signing.rotate();
    const secrets = await t.sql<{ private_key: Buffer }[]>`
      select private_key from signing_keys where private_key is not null`;
    expect(secrets.length).toBe(2);
    const html = await productPage("Stalcraft");
    for (const { private_key: seed } of secrets) {
      for (const form of [
        seed.toString("hex"),
        seed.toString("base64").replace(/=+$/, ""),
        seed.toString("base64url"),
      ]) {
        expect(html).not.toContain(form);
      }
    }
  });
});
