import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { PanelClient } from "./helpers/panel-client.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

let t: TestShop;
let c: PanelClient;

beforeAll(async () => {
  t = await createTestShop();
  const { password } = await t.shop.accounts.reset("admin");
  c = new PanelClient(t);
  await c.login("admin", password);
  await c.page("/products");
});
afterAll(async () => {
  await t.close();
});

/** A minimal valid zip: one empty stored file. */
function zipBytes(): Uint8Array<ArrayBuffer> {
  const name = new TextEncoder().encode("loader.exe");
  const local = new Uint8Array(30 + name.length);
  const dv = new DataView(local.buffer);
  dv.setUint32(0, 0x04034b50, true);
  dv.setUint16(26, name.length, true);
  local.set(name, 30);
  const central = new Uint8Array(46 + name.length);
  const cv = new DataView(central.buffer);
  cv.setUint32(0, 0x02014b50, true);
  cv.setUint16(28, name.length, true);
  central.set(name, 46);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, 1, true);
  ev.setUint16(10, 1, true);
  ev.setUint32(12, central.length, true);
  ev.setUint32(16, local.length, true);
  return new Uint8Array([...local, ...central, ...end]);
}

/** Russian number formatting uses (narrow) no-break spaces between thousands. */
const spaced = (text: string | undefined) => text?.replace(/[\u00a0\u202f]/g, " ");

async function productId(name: string): Promise<number> {
  return (await t.shop.products.require(name)).id;
}

describe("creating a product", () => {
  test("the name is checked while typing: bad characters and taken names", async () => {
    await t.shop.products.create({ name: "Taken" });
    const check = async (name: string) =>
      (await c.get(`/products/check-name?name=${encodeURIComponent(name)}`, { htmx: "partial" })).text();
    expect(await check("a/b")).toContain("не может содержать «/»");
    expect(await check("Taken")).toContain("уже существует");
    expect(await check(" x")).toContain("пробелом");
    expect(await check("Fine name")).toBe('<p id="name-check" class="hint" aria-live="polite"></p>');
  });

  test("a name of 64 emoji (64 characters, 128 UTF-16 units) fits the form and is created; 65 are refused", async () => {
    const name = "🎮".repeat(64);
    const input = /<input[^>]*id="f-name"[^>]*>/.exec((await c.page("/products")).html)?.[0] ?? "";
    const maxlength = Number(/maxlength="(\d+)"/.exec(input)?.[1]);
    // A browser counts maxlength in UTF-16 units: the field must let the whole name be typed.
    expect(name.length).toBeLessThanOrEqual(maxlength);
    const check = async (n: string) =>
      (await c.get(`/products/check-name?name=${encodeURIComponent(n)}`, { htmx: "partial" })).text();
    expect(await check(name)).toBe('<p id="name-check" class="hint" aria-live="polite"></p>');
    expect(await check(`${name}🎮`)).toContain("Название длиннее 64 символов");
    const res = await c.post("/products", { name }, { htmx: true });
    expect(res.headers.get("hx-location")).toBe(`/Morpheus%20Private/products/${await productId(name)}`);
    const longer = await c.post("/products", { name: `${name}🎮` }, { htmx: true });
    expect(longer.status).toBe(422);
    expect(await longer.text()).toContain("Название длиннее 64 символов");
  });

  test("a bad name comes back with the message under the field (422), the form keeps what was typed", async () => {
    const res = await c.post("/products", { name: "Bad/Name", description: "keep me" }, { htmx: true });
    expect(res.status).toBe(422);
    const html = await res.text();
    expect(html).toStartWith('<form id="product-create"');
    expect(html).toContain('class="field-error"');
    expect(html).toContain("keep me");
    const dup = await c.post("/products", { name: "Taken" }, { htmx: true });
    expect(dup.status).toBe(422);
    expect(await dup.text()).toContain("уже существует");
    // A plain form post gets the whole page with the same error.
    const plain = await c.post("/products", { name: "" });
    expect(plain.status).toBe(422);
    expect(await plain.text()).toContain("<h1>Продукты</h1>");
  });

  test("a product is created and the browser goes to its page; a <script> description renders as text", async () => {
    const res = await c.post(
      "/products",
      { name: "Stalcraft X", description: "<script>alert(1)</script>" },
      { htmx: true },
    );
    const id = await productId("Stalcraft X");
    expect(res.headers.get("hx-location")).toBe(`/Morpheus%20Private/products/${id}`);
    const page = await c.page(`/products/${id}`);
    expect(page.html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(page.html).not.toContain("<script>alert(1)</script>");
    expect(page.html).toContain(`http://127.0.0.1:3000/Morpheus%20Private/api/Stalcraft%20X/auth`);
    expect((await c.page("/products")).html).toContain("Stalcraft X");
  });
});

describe("a product's page", () => {
  let id: number;
  beforeAll(async () => {
    id = (await t.shop.products.create({ name: "Page" })).id;
  });

  test("the badge says «в продаже» only when the bot offers a duration, and follows prices and keys on the page", async () => {
    const fresh = await t.shop.products.create({ name: "Badge" });
    const badge = async () =>
      /<form id="archive"[\s\S]*?<span class="badge badge-(\w+)">([^<]+)<\/span>/.exec(
        (await c.page(`/products/${fresh.id}`)).html,
      );
    expect((await badge())?.slice(1)).toEqual(["warn", "не продаётся: нет цен"]);
    const priced = await c.post(`/products/${fresh.id}/prices`, { price_7: "1 490" }, { htmx: true });
    expect(priced.status).toBe(200);
    // The badge re-reads itself on this event.
    expect(priced.headers.get("hx-trigger")).toBe("prices-changed");
    expect((await t.shop.products.prices(fresh.id))[7]).toBe(1490);
    expect((await badge())?.slice(1)).toEqual(["warn", "не продаётся: нет ключей по ценам"]);
    await t.shop.keys.generate(fresh.id, 7, 1);
    const toggle = await c.get(`/products/${fresh.id}/archive`, { htmx: "partial" });
    expect(await toggle.text()).toContain('<span class="badge badge-ok">в продаже</span>');
  });

  test("description edit, archive and back", async () => {
    const res = await c.post(`/products/${id}/description`, { description: "Новое описание" }, { htmx: true });
    expect(await res.text()).toContain("Описание сохранено.");
    expect((await t.shop.products.byId(id))!.description).toBe("Новое описание");
    const long = await c.post(`/products/${id}/description`, { description: "x".repeat(3001) }, { htmx: true });
    expect(long.status).toBe(422);

    const archived = await c.post(`/products/${id}/archive`, { archived: "on" }, { htmx: true });
    expect(await archived.text()).toContain("в архиве с");
    expect((await t.shop.products.byId(id))!.archivedAt).not.toBeNull();
    await c.post(`/products/${id}/archive`, { archived: "off" }, { htmx: true });
    expect((await t.shop.products.byId(id))!.archivedAt).toBeNull();
  });

  test("prices: empty takes a duration off sale, junk is refused next to its field", async () => {
    const bad = await c.post(
      `/products/${id}/prices`,
      { price_1: "299", price_7: "abc", price_14: "", price_30: "", price_90: "" },
      { htmx: true },
    );
    expect(bad.status).toBe(422);
    const badHtml = await bad.text();
    expect(badHtml).toContain("Целое число рублей");
    expect(badHtml).toContain('value="abc"');
    expect(await t.shop.products.prices(id)).toEqual({});

    const ok = await c.post(
      `/products/${id}/prices`,
      { price_1: "299", price_7: "899", price_14: "", price_30: "1 999", price_90: "" },
      { htmx: true },
    );
    expect(await ok.text()).toContain("Цены сохранены.");
    expect(await t.shop.products.prices(id)).toEqual({ 1: 299, 7: 899, 30: 1999 });
    await c.post(`/products/${id}/prices`, { price_1: "", price_7: "899", price_30: "1999" }, { htmx: true });
    expect(await t.shop.products.prices(id)).toEqual({ 7: 899, 30: 1999 });
  });

  test("prices in Stars beside the roubles: saved per duration, junk refused next to its field, empty removes", async () => {
    const bad = await c.post(
      `/products/${id}/prices`,
      { price_7: "899", stars_7: "много", price_30: "1999", stars_30: "100001" },
      { htmx: true },
    );
    expect(bad.status).toBe(422);
    const badHtml = await bad.text();
    expect(badHtml.match(/Целое число звёзд до 100 000/g)).toHaveLength(2);
    expect(badHtml).toContain('value="много"');
    expect(await t.shop.products.starsPrices(id)).toEqual({});

    const ok = await c.post(
      `/products/${id}/prices`,
      { price_7: "899", stars_7: "60", price_30: "1999", stars_30: "1 200", stars_90: "3000" },
      { htmx: true },
    );
    const html = await ok.text();
    expect(html).toContain("Цены сохранены.");
    expect(html).toMatch(/name="stars_30"[^>]*value="1200"/);
    expect(await t.shop.products.starsPrices(id)).toEqual({ 7: 60, 30: 1200, 90: 3000 });
    // A Stars price alone does not put a duration on sale: the roubles decide.
    expect(await t.shop.products.prices(id)).toEqual({ 7: 899, 30: 1999 });
    await t.shop.keys.generate(id, 7, 1);
    const offer = (await t.shop.catalogue.product(id))?.offers.find((o) => o.days === 7);
    expect(offer).toMatchObject({ rub: 899, stars: 60 });
    await t.sql`delete from keys where product_id = ${id} and days = 7`;

    // A form from a page opened before Stars prices existed sends no Stars fields: the Stars prices stay.
    await c.post(`/products/${id}/prices`, { price_7: "899", price_30: "1999", price_90: "" }, { htmx: true });
    expect(await t.shop.products.starsPrices(id)).toEqual({ 7: 60, 30: 1200, 90: 3000 });
    await c.post(
      `/products/${id}/prices`,
      { price_7: "899", stars_7: "", price_30: "1999", stars_30: "0", stars_90: "" },
      { htmx: true },
    );
    expect(await t.shop.products.starsPrices(id)).toEqual({});
    expect(await t.shop.products.prices(id)).toEqual({ 7: 899, 30: 1999 });
  });

  test("build upload: refused unless the bytes are a zip; a zip shows its size, date and sha256", async () => {
    const notZip = await c.post(
      `/products/${id}/build`,
      { build: new File(["MZ not a zip"], "loader.zip") },
      { htmx: true, multipart: true },
    );
    expect(notZip.status).toBe(422);
    expect(await notZip.text()).toContain("Это не zip-архив");

    const bytes = zipBytes();
    const res = await c.post(`/products/${id}/build`, { build: new File([bytes], "Loader v2.zip") }, { htmx: true });
    expect(res.status).toBe(200);
    const html = await res.text();
    const sha = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
    expect(html).toContain("Билд загружен.");
    expect(html).toContain(sha);
    expect(html).toContain("Loader v2.zip");
    expect(html).toContain(`${bytes.length} Б`);
    const stored = (await t.shop.products.byId(id))!.build!;
    expect(new Uint8Array(await Bun.file(stored.path).arrayBuffer())).toEqual(bytes);
  });

  test("build upload as a plain form: the CSRF field in the body is checked before any byte is stored", async () => {
    const bytes = zipBytes();
    const before = (await t.shop.products.byId(id))!.build;
    // Without the field (and without the htmx header): refused, nothing stored.
    const forged = await c.post(
      `/products/${id}/build`,
      { build: new File([bytes], "forged.zip") },
      { csrf: false, multipart: true },
    );
    expect(forged.status).toBe(403);
    expect((await t.shop.products.byId(id))!.build).toEqual(before);
    // With it, as a browser without JavaScript sends the form: back to the product page.
    const plain = await c.post(`/products/${id}/build`, { build: new File([bytes], "plain.zip") }, { multipart: true });
    expect(plain.status).toBe(303);
    expect((await t.shop.products.byId(id))!.build!.name).toBe("plain.zip");
    // A form with no file says so.
    const empty = await c.post(`/products/${id}/build`, { note: "no file" }, { htmx: true, multipart: true });
    expect(empty.status).toBe(422);
    expect(await empty.text()).toContain("Выберите zip-файл");
  });

  test("a build over 50 MB sent without a length is refused as it streams, and nothing is kept", async () => {
    const before = (await t.shop.products.byId(id))!.build;
    const boundary = "----morpheus-test";
    const encoder = new TextEncoder();
    const head = encoder.encode(
      `--${boundary}\r\nContent-Disposition: form-data; name="build"; filename="huge.zip"\r\nContent-Type: application/zip\r\n\r\n`,
    );
    const chunk = new Uint8Array(1024 * 1024);
    chunk.set([0x50, 0x4b, 0x03, 0x04]);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(head);
      },
      pull(controller) {
        // 60 MB of "zip", then the closing boundary (never reached: the upload is refused first).
        if (sent >= 60) {
          controller.enqueue(encoder.encode(`\r\n--${boundary}--\r\n`));
          controller.close();
          return;
        }
        sent++;
        controller.enqueue(chunk);
      },
    });
    const res = await t.request(`/products/${id}/build`, {
      method: "POST",
      body,
      headers: {
        "content-type": `multipart/form-data; boundary=${boundary}`,
        cookie: [...c.cookies].map(([k, v]) => `${k}=${v}`).join("; "),
        "x-csrf-token": c.csrf,
        "hx-request": "true",
        "hx-request-type": "partial",
      },
    });
    expect(res.status).toBe(422);
    expect(await res.text()).toContain("Файл больше 50 МБ");
    expect(sent).toBeLessThan(60);
    expect((await t.shop.products.byId(id))!.build).toEqual(before);
    const leftovers = [...new Bun.Glob("builds/*.part").scanSync({ cwd: t.config.dataDir })];
    expect(leftovers).toEqual([]);
  });

  test("generating 10 000 keys answers with the keys and tells the page to refresh the lists", async () => {
    const started = performance.now();
    const res = await c.post(`/products/${id}/keys/generate`, { days: "30", count: "10000" }, { htmx: true });
    const ms = performance.now() - started;
    expect(res.status).toBe(200);
    expect(res.headers.get("hx-trigger")).toBe("keys-changed");
    const html = await res.text();
    const notice = /notice-ok" role="status">([^<]+)</.exec(html)?.[1];
    expect(spaced(notice)).toBe("Создано 10 000 ключей на 30 дней.");
    expect(html.match(/MPH-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}/g)?.length).toBe(10_000);
    const [row] = await t.sql<{ n: string }[]>`select count(*) as n from keys where product_id = ${id} and days = 30`;
    expect(Number(row!.n)).toBe(10_000);
    // Not a speed test: a generous bound that only fails if generation went badly wrong (e.g. one insert per key).
    expect(ms).toBeLessThan(10_000);

    const bad = await c.post(`/products/${id}/keys/generate`, { days: "2", count: "10001" }, { htmx: true });
    expect(bad.status).toBe(422);
    const errors = [...(await bad.text()).matchAll(/class="field-error"[^>]*>([^<]+)</g)].map((m) => spaced(m[1]));
    expect(errors).toEqual(["Выберите срок", "От 1 до 10 000"]);
  });

  test("import from the textarea or a .txt file counts imported, duplicates and bad lines", async () => {
    const text = "IMP-0001\nIMP-0002\n\nIMP-0001\nbad key with spaces\n";
    const res = await c.post(`/products/${id}/keys/import`, { days: "1", keys: text }, { htmx: true, multipart: true });
    const html = await res.text();
    expect(html).toContain("Импортировано: 2, дубликатов: 1, с ошибкой: 1 (срок 1 день).");
    expect(html).toContain("строка 5: в ключе пробел или непечатаемый символ");
    expect(res.headers.get("hx-trigger")).toBe("keys-changed");

    const file = new File(["IMP-0002\nIMP-0003\r\nIMP-0004\n"], "keys.txt", { type: "text/plain" });
    const fromFile = await c.post(`/products/${id}/keys/import`, { days: "7", file }, { htmx: true });
    expect(await fromFile.text()).toContain("Импортировано: 2, дубликатов: 1 (срок 7 дней).");

    const empty = await c.post(
      `/products/${id}/keys/import`,
      { days: "7", keys: "  " },
      { htmx: true, multipart: true },
    );
    expect(empty.status).toBe(422);
    expect(await empty.text()).toContain("Вставьте ключи или выберите файл");
  });

  test("the unsold list pages through keys, filters by duration and finds a key by its beginning", async () => {
    const first = await c.get(`/products/${id}/keys?list=unsold&days=1`, { htmx: "partial", target: "div#key-list" });
    const html = await first.text();
    expect(html).toStartWith('<div id="key-list">');
    expect(html).toContain("IMP-0001");
    expect(html).not.toContain("MPH-");

    const page1 = await (
      await c.get(`/products/${id}/keys?list=unsold&days=30`, { htmx: "partial", target: "div#key-list" })
    ).text();
    const next = /href="[^"]*after=([^"&]+)/.exec(page1)?.[1];
    expect(next).toBeDefined();
    const page2 = await (
      await c.get(`/products/${id}/keys?list=unsold&days=30&after=${next}`, { htmx: "partial", target: "div#key-list" })
    ).text();
    const keysOf = (h: string) => new Set(h.match(/MPH-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}/g));
    expect(keysOf(page1).size).toBe(50);
    expect(keysOf(page2).size).toBe(50);
    expect([...keysOf(page2)].some((k) => keysOf(page1).has(k))).toBe(false);

    const someKey = [...keysOf(page2)][7]!;
    const found = await (
      await c.get(`/products/${id}/keys?list=unsold&q=${someKey.slice(0, 12).toLowerCase()}`, {
        htmx: "partial",
        target: "div#key-list",
      })
    ).text();
    expect(found).toContain(someKey);

    // The tabs swap the whole section, with the counts.
    const section = await (
      await c.get(`/products/${id}/keys?list=sold`, { htmx: "partial", target: "section#keys" })
    ).text();
    expect(section).toStartWith('<section id="keys"');
    expect(section).toContain("Проданных ключей пока нет.");
  });

  test("a sold key: buyer, HWID after activation; reset HWID, ban/unban, extend, note", async () => {
    await t.shop.users.touch({ id: 8101, firstName: "<b>Buyer</b>" });
    const sold = await t.shop.keys.issue(id, 30, 8101);
    const auth = await t.request(`/api/Page/auth`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: sold.key, uuid: "HWID-<i>1</i>" }),
    });
    expect(auth.status).toBe(200);

    const list = await (
      await c.get(`/products/${id}/keys?list=sold`, { htmx: "partial", target: "div#key-list" })
    ).text();
    expect(list).toContain(sold.key);
    expect(list).toContain("HWID-&lt;i&gt;1&lt;/i&gt;");
    expect(list).toContain("&lt;b&gt;Buyer&lt;/b&gt;");
    expect(list).toContain("активен");

    const reset = await c.post(`/products/${id}/keys/${sold.id}/reset-hwid`, {}, { htmx: true });
    expect(reset.status).toBe(200);
    const row = await reset.text();
    expect(row).toStartWith(`<tr id="key-${sold.id}">`);
    expect(row).toContain("HWID сброшен");
    expect(row).toContain("активен, HWID сброшен");
    const afterReset = (await t.shop.keys.byId(sold.id))!;
    expect(afterReset.hwid).toBeNull();
    expect(afterReset.expiresAt).not.toBeNull();

    await c.post(`/products/${id}/keys/${sold.id}/ban`, {}, { htmx: true });
    expect((await t.shop.keys.byId(sold.id))!.bannedAt).not.toBeNull();
    const banned = await t.request(`/api/Page/auth`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: sold.key, uuid: "HWID-2" }),
    });
    expect(await banned.json()).toEqual({ success: false, message: "Key banned" });
    await c.post(`/products/${id}/keys/${sold.id}/unban`, {}, { htmx: true });
    expect((await t.shop.keys.byId(sold.id))!.bannedAt).toBeNull();

    const before = afterReset.expiresAt!.getTime();
    const extended = await c.post(`/products/${id}/keys/${sold.id}/extend`, { days: "5" }, { htmx: true });
    expect(await extended.text()).toContain("Продлён на 5 дн.");
    expect((await t.shop.keys.byId(sold.id))!.expiresAt!.getTime() - before).toBe(5 * 86_400_000);
    const badExtend = await c.post(`/products/${id}/keys/${sold.id}/extend`, { days: "0" }, { htmx: true });
    expect(badExtend.status).toBe(422);
    expect(await badExtend.text()).toContain("Продление — от 1 до 3650 дней");

    await c.post(`/products/${id}/keys/${sold.id}/note`, { note: "<script>x</script> refund" }, { htmx: true });
    expect((await t.shop.keys.byId(sold.id))!.note).toBe("<script>x</script> refund");
    const withNote = await (
      await c.get(`/products/${id}/keys?list=sold`, { htmx: "partial", target: "div#key-list" })
    ).text();
    expect(withNote).toContain("&lt;script&gt;x&lt;/script&gt; refund");

    // Search in sold keys by HWID, buyer id.
    await t.request(`/api/Page/auth`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: sold.key, uuid: "PC-SEARCH" }),
    });
    for (const q of ["PC-SEARCH", "8101"]) {
      const found = await (
        await c.get(`/products/${id}/keys?list=sold&q=${q}`, { htmx: "partial", target: "div#key-list" })
      ).text();
      expect(found).toContain(sold.key);
    }
  });

  test("an unsold key can be deleted; a sold one cannot; unknown keys are 404", async () => {
    const [key] = await t.shop.keys.generate(id, 14, 1);
    const record = (await t.shop.keys.find(key!))!;
    const res = await c.post(`/products/${id}/keys/${record.id}/delete`, {}, { htmx: true });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
    expect(res.headers.get("hx-trigger")).toBe("keys-changed");
    expect(await t.shop.keys.find(key!)).toBeNull();

    const sold = await t.shop.keys.issue(id, 30);
    const refused = await c.post(`/products/${id}/keys/${sold.id}/delete`, {}, { htmx: true });
    expect(refused.status).toBe(422);
    expect(await refused.text()).toContain("Удалить можно только непроданный ключ");
    expect((await c.post(`/products/${id}/keys/99999999/ban`, {}, { htmx: true })).status).toBe(404);
    expect((await c.post(`/products/${id}/keys/${sold.id}/explode`, {}, { htmx: true })).status).toBe(404);
  });

  test("CSV export streams every key of the list, with HWIDs that look like formulas defused", async () => {
    const other = (await t.shop.products.create({ name: "Csv" })).id;
    await t.shop.keys.generate(other, 7, 120);
    const sold = await t.shop.keys.issue(other, 7);
    await t.request(`/api/Csv/auth`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: sold.key, uuid: "=HYPERLINK(1)" }),
    });
    const unsold = await c.get(`/products/${other}/keys.csv?list=unsold`);
    expect(unsold.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(unsold.headers.get("content-disposition")).toContain("attachment;");
    const bytes = new Uint8Array(await unsold.arrayBuffer());
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const lines = new TextDecoder().decode(bytes).trim().split("\r\n");
    expect(lines[0]).toBe(
      "key,days,state,created_at,sold_at,buyer_telegram_id,order_id,hwid,activated_at,expires_at,banned_at,note",
    );
    expect(lines.length).toBe(1 + 119);
    const soldCsv = (await (await c.get(`/products/${other}/keys.csv?list=sold`)).text()).trim().split("\r\n");
    expect(soldCsv.length).toBe(2);
    expect(soldCsv[1]).toStartWith(`${sold.key},7,sold,`);
    expect(soldCsv[1]).toContain(",'=HYPERLINK(1),");
  });

  test("stock hints count available, reserved (unpaid orders) and sold keys per duration", async () => {
    const p = (await t.shop.products.create({ name: "Stock" })).id;
    await t.shop.products.setPrice(p, 14, 999);
    await t.shop.keys.generate(p, 14, 5);
    await t.shop.users.touch({ id: 8201, firstName: "Reserver" });
    expect((await t.shop.orders.place({ userId: 8201, productId: p, days: 14 })).kind).toBe("placed");
    await t.shop.keys.issue(p, 14);
    const html = await (await c.get(`/products/${p}/prices`, { htmx: "partial", target: "div#prices" })).text();
    expect(html).toStartWith('<div id="prices"');
    const hint = /for="f-price_14">14 дней<\/label>.*?<p class="hint">([^<]+)<\/p>/s.exec(html)?.[1];
    expect(hint).toBe("в наличии 3, в резерве 1, продано 1");
    const page = await c.page(`/products/${p}`);
    expect(page.html).toMatch(/Непроданные<\/span> <span class="chip-count">4</);
    expect(page.html).toMatch(/Проданные<\/span> <span class="chip-count">1</);
  });

  test("a product that does not exist is a 404 page, not a crash", async () => {
    expect((await c.page("/products/424242")).status).toBe(404);
    expect((await c.page("/products/abc")).status).toBe(404);
    const hx = await c.post("/products/424242/prices", { price_1: "1" }, { htmx: true });
    expect(hx.status).toBe(404);
    expect(await hx.text()).toContain("Такого продукта нет.");
  });
});

describe("errors are shown, never dropped", () => {
  let id: number;
  beforeAll(async () => {
    id = (await t.shop.products.create({ name: "Loud" })).id;
  });

  test("a refused key action sent by a plain form (no htmx) shows the reason in that key's row", async () => {
    await t.shop.keys.generate(id, 30, 3);
    const sold = await t.shop.keys.issue(id, 30);
    await t.request("/api/Loud/auth", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: sold.key, uuid: "PC-1" }),
    });
    const before = (await t.shop.keys.byId(sold.id))!.expiresAt;
    const res = await c.post(`/products/${id}/keys/${sold.id}/extend`, { days: "abc" });
    expect(res.status).toBe(422);
    const html = await res.text();
    expect(html).toContain("<html");
    const row = new RegExp(`<tr id="key-${sold.id}">.*?</tr>`, "s").exec(html)?.[0];
    expect(row).toContain("Продление — от 1 до 3650 дней");
    expect(row).toContain(sold.key);
    expect((await t.shop.keys.byId(sold.id))!.expiresAt).toEqual(before);
    // The page lists that key: its search box says so.
    expect(html).toContain(`name="q" value="${sold.key}"`);

    const refusedDelete = await c.post(`/products/${id}/keys/${sold.id}/delete`, {});
    expect(refusedDelete.status).toBe(422);
    expect(await refusedDelete.text()).toContain("Удалить можно только непроданный ключ");
  });

  test("archive with a value that is neither on nor off answers 422 with a message, and changes nothing", async () => {
    const hx = await c.post(`/products/${id}/archive`, { archived: "maybe" }, { htmx: true });
    expect(hx.status).toBe(422);
    const fragment = await hx.text();
    expect(fragment).toStartWith('<form id="archive"');
    expect(fragment).toContain("обновите страницу и нажмите кнопку ещё раз");
    const plain = await c.post(`/products/${id}/archive`, {});
    expect(plain.status).toBe(422);
    const page = await plain.text();
    expect(page).toContain("<h1>Loud</h1>");
    expect(page).toContain("обновите страницу и нажмите кнопку ещё раз");
    expect((await t.shop.products.byId(id))!.archivedAt).toBeNull();
  });

  test("import with both pasted keys and a file is refused: nothing imported, the pasted keys are kept", async () => {
    const file = new File(["FROM-FILE-1\n"], "keys.txt", { type: "text/plain" });
    const res = await c.post(
      `/products/${id}/keys/import`,
      { days: "1", keys: "PASTED-1\nPASTED-2", file },
      { htmx: true },
    );
    expect(res.status).toBe(422);
    const html = await res.text();
    expect(html).toContain("Вставлены ключи и выбран файл — ничего не импортировано");
    expect(html).toMatch(/<textarea id="f-keys"[^>]*>PASTED-1\r?\nPASTED-2<\/textarea>/);
    expect(res.headers.get("hx-trigger")).toBeNull();
    const [row] = await t.sql<{ n: string }[]>`
      select count(*) as n from keys where key in ('FROM-FILE-1', 'PASTED-1', 'PASTED-2')`;
    expect(Number(row!.n)).toBe(0);
  });
});

describe("key list filters", () => {
  test("the list swapped in by a search carries a CSV export of that search; the section keeps the filter", async () => {
    const id = (await t.shop.products.create({ name: "Filters" })).id;
    await t.shop.keys.importText(id, 7, "ALPHA-1\nALPHA-2\nBETA-1\n");
    const list = await (
      await c.get(`/products/${id}/keys?list=unsold&days=7&q=alpha`, { htmx: "partial", target: "div#key-list" })
    ).text();
    expect(list).toStartWith('<div id="key-list">');
    const csv = /id="keys-csv"[^>]*href="([^"]+)"|href="([^"]+)"[^>]*id="keys-csv"/.exec(list);
    const url = (csv?.[1] ?? csv?.[2])!.replaceAll("&amp;", "&");
    expect(url).toBe(`/Morpheus%20Private/products/${id}/keys.csv?list=unsold&days=7&q=alpha`);
    expect(list).toContain("Экспорт CSV (по фильтру)");
    const exported = (await (await c.get(url.replace("/Morpheus%20Private", ""))).text()).trim().split("\r\n");
    expect(
      exported
        .slice(1)
        .map((l) => l.split(",")[0])
        .sort(),
    ).toEqual(["ALPHA-1", "ALPHA-2"]);

    // The section (what the refresh after a change asks for, with the form's values) keeps the search box filled.
    const section = await (
      await c.get(`/products/${id}/keys?list=unsold&days=7&q=alpha`, { htmx: "partial", target: "section#keys" })
    ).text();
    expect(section).toContain('hx-include="#key-filters"');
    expect(section).toContain('name="q" value="alpha"');
    expect(section).not.toContain("BETA-1");
  });
});

describe("a big import", () => {
  test("100 000 lines from a .txt: the answer is a progress block at once, polling shows real counts, then the result", async () => {
    const id = (await t.shop.products.create({ name: "Bulk" })).id;
    await t.shop.keys.importText(id, 30, "BULK-000007\n");
    const lines = Array.from({ length: 100_000 }, (_, i) => `BULK-${String(i).padStart(6, "0")}`);
    const file = new File([`${lines.join("\n")}\nnot a key\n`], "keys.txt", { type: "text/plain" });
    const started = performance.now();
    const res = await c.post(`/products/${id}/keys/import`, { days: "30", file }, { htmx: true });
    const answeredMs = performance.now() - started;
    expect(res.status).toBe(202);
    const first = await res.text();
    expect(first).toStartWith('<section id="import"');
    expect(first).toContain('hx-trigger="load delay:400ms"');
    // Not a speed test: only fails if the request waited for the whole import again.
    expect(answeredMs).toBeLessThan(2_000);
    const poll = /hx-get="([^"]+)"/.exec(first)![1]!.replace("/Morpheus%20Private", "");

    const seen: string[] = [];
    let last: Response | null = null;
    for (let i = 0; i < 600; i++) {
      last = await c.get(poll, { htmx: "partial", target: "section#import" });
      const html = await last.text();
      if (!html.startsWith('<section id="import"')) {
        seen.push(html);
        break;
      }
      seen.push(/role="status">([^<]+)</.exec(html)![1]!.replace(/[\u00a0\u202f]/g, " "));
      await Bun.sleep(50);
    }
    const result = seen.at(-1)!;
    expect(spaced(result)).toContain("Импортировано: 99 999, дубликатов: 1, с ошибкой: 1 (срок 30 дней).");
    expect(last!.headers.get("hx-trigger")).toBe("keys-changed");
    // In between, the counts went up in batches and never past the total.
    const progress = seen.slice(0, -1).map((s) => Number(/Импорт: ([\d ]+) из/.exec(s)![1]!.replace(/ /g, "")));
    expect(progress.some((n) => n > 0 && n < 100_000)).toBe(true);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(seen[0]).toContain("из 100 000 ключей (срок 30 дней)");
    const [row] = await t.sql<{ n: string }[]>`select count(*) as n from keys where product_id = ${id}`;
    expect(Number(row!.n)).toBe(100_000);
    // The finished job was handed out once.
    const again = await c.get(poll, { htmx: "partial", target: "section#import" });
    expect(again.status).toBe(404);
    expect(await again.text()).toContain("Этот импорт уже не отслеживается");
  }, 60_000);

  test("a small import still answers with its result at once", async () => {
    const id = (await t.shop.products.create({ name: "Small" })).id;
    const res = await c.post(
      `/products/${id}/keys/import`,
      { days: "1", keys: "S-1\nS-2" },
      { htmx: true, multipart: true },
    );
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("Импортировано: 2, дубликатов: 0 (срок 1 день).");
  });
});

describe("«Выдать ключ»", () => {
  test("sells one key by hand, to a Telegram id with a note; the key is shown and the lists refresh", async () => {
    const product = await t.shop.products.create({ name: "Issue by hand" });
    await t.shop.keys.generate(product.id, 7, 2);
    const page = await c.page(`/products/${product.id}`);
    expect(page.html).toContain('<form id="issue"');
    expect(page.html).toContain("Выдать ключ");

    const res = await c.post(
      `/products/${product.id}/keys/issue`,
      { days: "7", to: "8201", note: "замена по тикету 42" },
      { htmx: true },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("hx-trigger")).toBe("keys-changed");
    const html = await res.text();
    const key = /<code id="issued-key" class="mono">([^<]+)<\/code>/.exec(html)?.[1];
    expect(key).toMatch(/^MPH-/);
    expect(html).toContain("Ключ выдан на 7 дней покупателю 8201");
    expect(await t.shop.keys.find(key!)).toMatchObject({
      state: "sold",
      gift: true,
      buyerId: 8201,
      note: "замена по тикету 42",
      days: 7,
    });
    // The buyer's page has it, and the log says how it came.
    const buyer = await c.page("/users/8201");
    expect(buyer.html).toContain(key!);
    expect(buyer.html).toContain(`Получил ключ MPH-…${key!.slice(-4)} без оплаты: «Issue by hand» на 7 дней`);

    // Without a Telegram id, as a plain form: the product page with the key.
    const plain = await c.post(`/products/${product.id}/keys/issue`, { days: "7", to: "", note: "" });
    expect(plain.status).toBe(200);
    const other = /<code id="issued-key" class="mono">([^<]+)<\/code>/.exec(await plain.text())?.[1];
    expect(await t.shop.keys.find(other!)).toMatchObject({ state: "sold", gift: true, buyerId: null });
  });

  test("refuses a bad Telegram id or a too long note next to the field, and says when no key is left", async () => {
    const product = await t.shop.products.create({ name: "Issue refused" });
    await t.shop.keys.generate(product.id, 30, 1);
    const bad = await c.post(
      `/products/${product.id}/keys/issue`,
      { days: "30", to: "@anna", note: "" },
      { htmx: true },
    );
    expect(bad.status).toBe(422);
    expect(await bad.text()).toContain("Telegram ID — положительное число");
    const none = await c.post(`/products/${product.id}/keys/issue`, { days: "90", to: "", note: "" }, { htmx: true });
    expect(none.status).toBe(409);
    expect(await none.text()).toContain("Нет свободных ключей на 90 дней");
    const long = await c.post(
      `/products/${product.id}/keys/issue`,
      { days: "30", to: "", note: "x".repeat(501) },
      { htmx: true },
    );
    expect(long.status).toBe(422);
    expect(await long.text()).toContain("Заметка длиннее 500 символов");
    // Nothing was sold by the refused attempts.
    expect(
      (await t.sql`select count(*)::int as n from keys where product_id = ${product.id} and state = 'sold'`)[0]!.n,
    ).toBe(0);
  });
});
