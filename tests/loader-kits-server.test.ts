import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import {
  buildCKit,
  type Emulator,
  everyKit,
  exitCodes,
  KITS,
  type Kit,
  type KitRequest,
  newSigningKey,
  runKits,
  signatureHeader,
  startEmulator,
} from "./helpers/kits.ts";
import { ensureProduct, eventually, soldKey } from "./helpers/licence.ts";
import { cleanEnv, type Finished, runToEnd } from "./helpers/process.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

/**
 * The loader kits of clients/ against the real shop (its HTTP app on a port, real PostgreSQL and Redis, the signing
 * key `migrate` made), and against emulators made of the shop's own real answers: recorded and replayed, or passed
 * through a proxy that changes them on the way. Every kit must accept the shop and refuse every emulator.
 */
// Hang protection only: four kits start as processes per test on a shared machine (the C kit is built first).
setDefaultTimeout(60_000);

const PRODUCT = "Sc 12345";
/** A name that only survives the trip if every kit percent-decodes the URL's segment as UTF-8, as the shop does. */
const CYRILLIC = "Читы Pro";

let t: TestShop;
let shopUrl: string;
let emu: Emulator;
/** The shop's signing key as a loader developer pins it: the newest key of GET /api/public-key. */
let pinned: string;

type PublishedKey = { key_id: string; public_key: string };
async function publishedKeys(): Promise<PublishedKey[]> {
  const res = await fetch(`${shopUrl}/api/public-key`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { keys: PublishedKey[] }).keys;
}

beforeAll(async () => {
  t = await createTestShop();
  t.app.listen({ hostname: "127.0.0.1", port: 0 });
  shopUrl = `http://127.0.0.1:${t.app.server!.port}${encodeURI(t.config.basePath)}`;
  emu = startEmulator();
  await ensureProduct(t, PRODUCT);
  await ensureProduct(t, CYRILLIC);
  pinned = (await publishedKeys())[0]!.public_key;
  await buildCKit();
});
afterAll(async () => {
  await emu.stop();
  await t.app.stop(true);
  await t.close();
});

const authUrl = (product: string) => `${shopUrl}/api/${encodeURIComponent(product)}/auth`;
const uuidOf = (kit: Kit) => `PC-${kit.name.replace(/\W+/g, "")}`;

/** One sold, never activated key per kit: the first check binds it to that kit's PC. */
async function keyPerKit(product = PRODUCT, days = 1): Promise<Record<string, string>> {
  const keys: Record<string, string> = {};
  // soldKey is not safe concurrently: one after another.
  for (const kit of KITS) keys[kit.name] = await soldKey(t, product, days);
  return keys;
}

async function hwidOf(key: string): Promise<string | null> {
  const [row] = await t.sql<{ hwid: string | null }[]>`select hwid from keys where key = ${key}`;
  return row!.hwid;
}

describe("against the real shop", () => {
  test("a sold key: the first check activates it for this PC (exit 0, 0 days 23 hours), the next one too", async () => {
    const keys = await keyPerKit(PRODUCT, 1);
    const args = (kit: Kit) => [authUrl(PRODUCT), keys[kit.name]!, uuidOf(kit), pinned];
    for (const round of [1, 2]) {
      const results = await runKits(args);
      expect({ round, codes: exitCodes(results) }).toEqual({ round, codes: everyKit(0) });
      for (const r of Object.values(results)) expect(r.out).toMatch(/^days: 0\nhours: 23\nexpires_at: \S+Z\n$/);
    }
    for (const kit of KITS) expect(await hwidOf(keys[kit.name]!)).toBe(uuidOf(kit));
  });

  test("a product named in Cyrillic with a space: the echoed product matches the decoded URL (exit 0)", async () => {
    const keys = await keyPerKit(CYRILLIC, 30);
    const results = await runKits((kit) => [authUrl(CYRILLIC), keys[kit.name]!, uuidOf(kit), pinned]);
    expect(exitCodes(results)).toEqual(everyKit(0));
    for (const r of Object.values(results)) expect(r.out).toStartWith("days: 29\nhours: 23\n");
  });

  test("the key on another PC: exit 1, HWID mismatch", async () => {
    const keys = await keyPerKit();
    expect(exitCodes(await runKits((kit) => [authUrl(PRODUCT), keys[kit.name]!, uuidOf(kit), pinned]))).toEqual(
      everyKit(0),
    );
    const results = await runKits((kit) => [authUrl(PRODUCT), keys[kit.name]!, "PC-of-a-friend", pinned]);
    expect(exitCodes(results)).toEqual(everyKit(1));
    for (const r of Object.values(results)) expect(r.out).toBe("refused: HWID mismatch (HTTP 403)\n");
  });

  test("an expired key: exit 1, Key expired", async () => {
    const keys = await keyPerKit();
    for (const kit of KITS) {
      await t.sql`
        update keys set hwid = ${uuidOf(kit)}, activated_at = now() - interval '2 days',
          expires_at = now() - interval '1 day'
        where key = ${keys[kit.name]!}`;
    }
    const results = await runKits((kit) => [authUrl(PRODUCT), keys[kit.name]!, uuidOf(kit), pinned]);
    expect(exitCodes(results)).toEqual(everyKit(1));
    for (const r of Object.values(results)) expect(r.out).toBe("refused: Key expired (HTTP 403)\n");
  });

  test("a banned key: exit 1, Key banned", async () => {
    const keys = await keyPerKit();
    for (const kit of KITS) await t.shop.keys.setBanned({ key: keys[kit.name]! }, true);
    const results = await runKits((kit) => [authUrl(PRODUCT), keys[kit.name]!, uuidOf(kit), pinned]);
    expect(exitCodes(results)).toEqual(everyKit(1));
    for (const r of Object.values(results)) expect(r.out).toBe("refused: Key banned (HTTP 403)\n");
  });

  test("an unknown key, an unknown product, a key too long: exit 1 with the shop's reason", async () => {
    const cases: [string, string, string][] = [
      [authUrl(PRODUCT), "MPH-NOPE0-NOPE0-NOPE0", "refused: Key mismatch (HTTP 403)\n"],
      [authUrl("No such game"), "MPH-NOPE0-NOPE0-NOPE0", "refused: Product not found (HTTP 404)\n"],
      [authUrl(PRODUCT), "K".repeat(129), "refused: Invalid key: longer than 128 characters (HTTP 400)\n"],
    ];
    for (const [url, key, out] of cases) {
      const results = await runKits((kit) => [url, key, uuidOf(kit), pinned]);
      expect({ key, codes: exitCodes(results) }).toEqual({ key, codes: everyKit(1) });
      for (const r of Object.values(results)) expect(r.out).toBe(out);
    }
  });

  test("a kit pinned to another key refuses the real shop's answer (exit 2)", async () => {
    const keys = await keyPerKit();
    const stranger = newSigningKey().publicKey;
    const results = await runKits((kit) => [authUrl(PRODUCT), keys[kit.name]!, uuidOf(kit), stranger]);
    expect(exitCodes(results)).toEqual(everyKit(2));
    for (const r of Object.values(results)) expect(r.err).toContain("no valid signature by the pinned key");
  });
});

/** The shop's real answer to what the kit sent: status, exact bytes and X-Signature. */
async function realAnswer(req: KitRequest): Promise<{ status: number; body: ArrayBuffer; signature: string }> {
  const res = await fetch(authUrl(req.product), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key: req.key, uuid: req.uuid, nonce: req.nonce }),
  });
  return {
    status: res.status,
    body: await res.arrayBuffer(),
    signature: res.headers.get("x-signature")!,
  };
}

describe("against emulators made of the real shop's answers", () => {
  const viaEmulator = (keys: Record<string, string>) =>
    runKits((kit) => [emu.authUrl(PRODUCT), keys[kit.name]!, uuidOf(kit), pinned]);

  test("a proxy that passes the real answer through untouched is believed (the control for what follows)", async () => {
    emu.answer = async (req) => {
      const real = await realAnswer(req);
      return new Response(real.body, { status: real.status, headers: { "x-signature": real.signature } });
    };
    expect(exitCodes(await viaEmulator(await keyPerKit()))).toEqual(everyKit(0));
  });

  test("a real answer with one byte changed on the way (hours 23 → 93): exit 2", async () => {
    emu.answer = async (req) => {
      const real = await realAnswer(req);
      const text = new TextDecoder().decode(real.body);
      expect(text).toContain('"hours":23');
      return new Response(text.replace('"hours":23', '"hours":93'), { headers: { "x-signature": real.signature } });
    };
    expect(exitCodes(await viaEmulator(await keyPerKit()))).toEqual(everyKit(2));
  });

  test("a real refusal turned into a success on the way: exit 2", async () => {
    emu.answer = async (req) => {
      const real = await realAnswer(req);
      const text = new TextDecoder().decode(real.body);
      expect(text).toStartWith('{"success":false,"message":"Key banned"');
      return new Response(text.replace('"success":false', '"success":true '), {
        headers: { "x-signature": real.signature },
      });
    };
    const keys = await keyPerKit();
    for (const key of Object.values(keys)) await t.shop.keys.setBanned({ key }, true);
    expect(exitCodes(await viaEmulator(keys))).toEqual(everyKit(2));
  });

  test("a real signed success replayed for a new nonce: exit 2", async () => {
    const keys = await keyPerKit();
    // Recorded from the shop for exactly this key, PC and product: only the nonce is not the kit's.
    const recorded = new Map<unknown, { body: ArrayBuffer; signature: string }>();
    for (const kit of KITS) {
      const nonce = `recorded-${crypto.randomUUID()}`;
      const real = await realAnswer({
        product: PRODUCT,
        key: keys[kit.name],
        uuid: uuidOf(kit),
        nonce,
        contentType: "",
      });
      expect(real.status).toBe(200);
      recorded.set(uuidOf(kit), real);
    }
    emu.answer = (req) => {
      const real = recorded.get(req.uuid)!;
      return new Response(real.body, { headers: { "x-signature": real.signature } });
    };
    const results = await viaEmulator(keys);
    expect(exitCodes(results)).toEqual(everyKit(2));
    for (const r of Object.values(results)) expect(r.err).toContain("nonce");
  });

  test("a real answer with its signature stripped, or re-signed by the cracker's key: exit 2", async () => {
    const cracker = newSigningKey();
    for (const header of [
      (_: ArrayBuffer) => null,
      (body: ArrayBuffer) => signatureHeader(new Uint8Array(body), [cracker]),
    ]) {
      emu.answer = async (req) => {
        const real = await realAnswer(req);
        const signature = header(real.body);
        return new Response(real.body, { headers: signature ? { "x-signature": signature } : {} });
      };
      expect(exitCodes(await viaEmulator(await keyPerKit()))).toEqual(everyKit(2));
    }
  });
});

describe("key rotation (api:rotate-key, api:retire-key)", () => {
  const cli = (args: string[]) =>
    runToEnd(
      ["bun", "src/cli.ts", ...args],
      cleanEnv({ DATABASE_URL: t.databaseUrl, REDIS_URL: t.redisUrl, REDIS_PREFIX: t.redisPrefix }),
    );

  async function succeeds(run: Promise<Finished>): Promise<Finished> {
    const r = await run;
    if (r.code !== 0) throw new Error(`the CLI exited ${r.code}: ${r.err}`);
    return r;
  }

  /** The key a loader developer pins after a rotation: what `api:public-key` prints. */
  async function newestFromCli(): Promise<string> {
    const r = await succeeds(cli(["api:public-key"]));
    return /^public_key: (\S+)$/m.exec(r.out)![1]!;
  }

  test("loaders pinned to the old key keep working through a rotation, and stop when it is retired", async () => {
    const old = pinned;
    const oldId = (await publishedKeys())[0]!.key_id;
    await succeeds(cli(["api:rotate-key"]));
    // The shop serving the loaders hears of the new key from the CLI's process.
    await eventually(async () => (await publishedKeys()).length === 2, 10_000);
    const newest = await newestFromCli();
    expect(newest).not.toBe(old);
    expect((await publishedKeys()).map((k) => k.public_key)).toEqual([newest, old]);

    const keys = await keyPerKit();
    const run = (key: string) => runKits((kit) => [authUrl(PRODUCT), keys[kit.name]!, uuidOf(kit), key]);
    expect(exitCodes(await run(old))).toEqual(everyKit(0));
    expect(exitCodes(await run(newest))).toEqual(everyKit(0));

    await succeeds(cli(["api:retire-key", oldId]));
    await eventually(async () => (await publishedKeys()).length === 1, 10_000);
    expect(exitCodes(await run(newest))).toEqual(everyKit(0));
    const retired = await run(old);
    expect(exitCodes(retired)).toEqual(everyKit(2));
    for (const r of Object.values(retired)) expect(r.err).toContain("no valid signature by the pinned key");
  });
});
