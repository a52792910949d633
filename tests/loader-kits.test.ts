import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  answerBody,
  buildCKit,
  type Emulator,
  everyKit,
  exitCodes,
  jsonAnswer,
  KITS,
  type KitRequest,
  newSigningKey,
  runKits,
  SUCCESS,
  signatureHeader,
  startEmulator,
} from "./helpers/kits.ts";
import { cleanEnv, runToEnd } from "./helpers/process.ts";
import { freePort } from "./helpers/servers.ts";

/**
 * The loader kits of clients/ against emulators: local servers that answer them as a cracker's fake licence server
 * would, each kit run as a process exactly as a loader developer runs it (docs/licence-api.md#loader-kits: exit 0
 * valid, 1 refused by a verified answer, 2 not trusted). The kits pin `shop`; the cracker has `cracker`, a key of his
 * own.
 */
// Hang protection only: four kits start as processes per test on a shared machine (the C kit is built first).
setDefaultTimeout(60_000);

const shop = newSigningKey();
const cracker = newSigningKey();
const PRODUCT = "Morpheus Sc 12345";
const KEY = "MPH-ABCDE-FGHJK-MNPQR";
const UUID = "PC-3f1c-loader";

let emu: Emulator;
beforeAll(async () => {
  emu = startEmulator();
  await buildCKit();
});
afterAll(async () => {
  await emu.stop();
});

/** Each kit asks about the same key on its own uuid, so an emulator can tell the kits' requests apart. */
const uuidOf = (kit: { name: string }) => `${UUID}-${kit.name.replace(/\W+/g, "")}`;
const runAll = (url = emu.authUrl(PRODUCT), key = KEY) => runKits((kit) => [url, key, uuidOf(kit), shop.publicKey]);

/** The shop's honest answer to a request, signed by the given keys (default: the pinned one). */
const honest = (req: KitRequest, fields: Record<string, unknown> = SUCCESS(), status = 200, keys = [shop], echo = {}) =>
  jsonAnswer(answerBody(req, fields, echo), status, keys);

describe("what every kit accepts", () => {
  test("a success signed by the pinned key and bound to the request: exit 0, days, hours and expiry printed", async () => {
    emu.answer = (req) => honest(req, SUCCESS(29, 23));
    const results = await runAll();
    expect(exitCodes(results)).toEqual(everyKit(0));
    for (const r of Object.values(results)) {
      expect(r.out).toMatch(/^days: 29\nhours: 23\nexpires_at: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\n$/);
    }
  });

  test("a verified refusal: exit 1 with the shop's reason", async () => {
    emu.answer = (req) => honest(req, { success: false, message: "Key expired" }, 403);
    const results = await runAll();
    expect(exitCodes(results)).toEqual(everyKit(1));
    for (const r of Object.values(results)) expect(r.out).toBe("refused: Key expired (HTTP 403)\n");
  });

  test("during a rotation the pinned key's entry is found behind the newer key's, spaces or not", async () => {
    const newer = newSigningKey();
    emu.answer = (req) => {
      const body = answerBody(req, SUCCESS());
      const header = signatureHeader(body, [newer, shop]).replace(", ", ",");
      return new Response(body, { status: 200, headers: { "x-signature": header } });
    };
    expect(exitCodes(await runAll())).toEqual(everyKit(0));
  });

  test("a server_time 9 minutes off is still accepted (the limit is 10)", async () => {
    const serverTime = new Date(Date.now() - 9 * 60_000).toISOString();
    emu.answer = (req) => honest(req, SUCCESS(), 200, [shop], { server_time: serverTime });
    expect(exitCodes(await runAll())).toEqual(everyKit(0));
  });

  test("an entry the kit does not understand, ahead of the pinned key's, is skipped", async () => {
    emu.answer = (req) => {
      const body = answerBody(req, SUCCESS());
      const header = `no-colon-here, ${cracker.id}:, :, ${signatureHeader(body, [shop])}`;
      return new Response(body, { status: 200, headers: { "x-signature": header } });
    };
    expect(exitCodes(await runAll())).toEqual(everyKit(0));
  });

  test("each call sends key, uuid and a fresh nonce of 16-128 URL-safe characters, as JSON", async () => {
    emu.answer = (req) => honest(req);
    emu.requests.length = 0;
    await runAll();
    await runAll();
    expect(emu.requests).toHaveLength(2 * KITS.length);
    for (const req of emu.requests) {
      expect(req.contentType).toBe("application/json");
      expect(req.product).toBe(PRODUCT);
      expect(req.key).toBe(KEY);
      expect(String(req.uuid)).toStartWith(UUID);
      expect(req.nonce).toMatch(/^[A-Za-z0-9_-]{16,128}$/);
    }
    expect(new Set(emu.requests.map((r) => r.nonce)).size).toBe(2 * KITS.length);
  });
});

describe("what every kit refuses as untrusted (exit 2)", () => {
  test("the classic emulator: an unsigned success", async () => {
    emu.answer = (req) => jsonAnswer(answerBody(req, SUCCESS()), 200);
    const results = await runAll();
    expect(exitCodes(results)).toEqual(everyKit(2));
    for (const r of Object.values(results)) {
      expect(r.out).toBe("");
      expect(r.err).toContain("no X-Signature header");
    }
  });

  test('the 20-line emulator: {"success":true} and nothing else', async () => {
    emu.answer = () => new Response('{"success":true}', { headers: { "content-type": "application/json" } });
    expect(exitCodes(await runAll())).toEqual(everyKit(2));
  });

  test("a success signed by the cracker's own key, under his key id", async () => {
    emu.answer = (req) => honest(req, SUCCESS(), 200, [cracker]);
    const results = await runAll();
    expect(exitCodes(results)).toEqual(everyKit(2));
    for (const r of Object.values(results)) expect(r.err).toContain("no valid signature by the pinned key");
  });

  test("a success signed by the cracker's key but labelled with the pinned key's id", async () => {
    emu.answer = (req) => {
      const body = answerBody(req, SUCCESS());
      const header = signatureHeader(body, [cracker]).replace(cracker.id, shop.id);
      return new Response(body, { headers: { "x-signature": header } });
    };
    expect(exitCodes(await runAll())).toEqual(everyKit(2));
  });

  test("a success signed by the cracker's key listed beside the pinned key's signature of another answer", async () => {
    emu.answer = (req) => {
      const body = answerBody(req, SUCCESS());
      const stale = answerBody(req, { success: false, message: "Key expired" });
      const header = `${signatureHeader(body, [cracker])}, ${signatureHeader(stale, [shop])}`;
      return new Response(body, { headers: { "x-signature": header } });
    };
    expect(exitCodes(await runAll())).toEqual(everyKit(2));
  });

  test("a real signed success replayed to a later call (its nonce is the earlier call's)", async () => {
    const recorded = new Map<unknown, Response>();
    emu.answer = (req) => {
      const seen = recorded.get(req.uuid);
      if (seen) return seen.clone();
      const first = honest(req);
      recorded.set(req.uuid, first.clone());
      return first;
    };
    expect(exitCodes(await runAll())).toEqual(everyKit(0));
    const replayed = await runAll();
    expect(exitCodes(replayed)).toEqual(everyKit(2));
    for (const r of Object.values(replayed)) expect(r.err).toContain("nonce");
  });

  test("a real signed answer with one byte changed (hours 23 → 93)", async () => {
    emu.answer = (req) => {
      const body = answerBody(req, SUCCESS(0, 23));
      const header = signatureHeader(body, [shop]);
      return new Response(body.replace('"hours":23', '"hours":93'), { headers: { "x-signature": header } });
    };
    expect(exitCodes(await runAll())).toEqual(everyKit(2));
  });

  test("a real signed success re-formatted: same fields, other bytes (a kit must verify the bytes received)", async () => {
    emu.answer = (req) => {
      const body = answerBody(req, SUCCESS());
      const header = signatureHeader(body, [shop]);
      return new Response(JSON.stringify(JSON.parse(body), null, 1), { headers: { "x-signature": header } });
    };
    expect(exitCodes(await runAll())).toEqual(everyKit(2));
  });

  const echoes: [string, Record<string, unknown>][] = [
    ["nonce", { nonce: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }],
    ["key", { key: "MPH-ZZZZZ-ZZZZZ-ZZZZZ" }],
    ["key differing only in case", { key: KEY.toLowerCase() }],
    ["uuid", { uuid: "PC-of-someone-else" }],
    ["product", { product: "Another product" }],
    ["product, still percent-encoded", { product: encodeURIComponent(PRODUCT) }],
    ["key as a number where a string was sent", { key: 12345 }],
    ["key missing", { key: undefined }],
    ["key null", { key: null }],
  ];
  for (const [what, echo] of echoes) {
    test(`a pinned-key signed success whose echoed ${what} is not what the kit sent`, async () => {
      emu.answer = (req) => honest(req, SUCCESS(), 200, [shop], echo);
      const key = what.includes("number") ? "12345" : KEY;
      expect(exitCodes(await runAll(emu.authUrl(PRODUCT), key))).toEqual(everyKit(2));
    });
  }

  for (const [what, minutes] of [
    ["11 minutes behind", -11],
    ["11 minutes ahead of", 11],
  ] as const) {
    test(`a pinned-key signed success whose server_time is ${what} the loader's clock`, async () => {
      const serverTime = new Date(Date.now() + minutes * 60_000).toISOString();
      emu.answer = (req) => honest(req, SUCCESS(), 200, [shop], { server_time: serverTime });
      const results = await runAll();
      expect(exitCodes(results)).toEqual(everyKit(2));
      for (const r of Object.values(results)) expect(r.err).toContain("10 minutes");
    });
  }

  for (const [what, serverTime] of [
    ["missing", undefined],
    ["a number", Date.now()],
    ["without its Z", new Date().toISOString().slice(0, -1)],
    ["a date only", new Date().toISOString().slice(0, 10)],
  ] as const) {
    test(`a pinned-key signed success whose server_time is ${what}`, async () => {
      emu.answer = (req) => honest(req, SUCCESS(), 200, [shop], { server_time: serverTime });
      expect(exitCodes(await runAll())).toEqual(everyKit(2));
    });
  }

  test("a pinned-key signed body that is not JSON", async () => {
    emu.answer = () => jsonAnswer("OK", 200, [shop]);
    const results = await runAll();
    expect(exitCodes(results)).toEqual(everyKit(2));
    for (const r of Object.values(results)) expect(r.err).toContain("not JSON");
  });

  test("a pinned-key signed success followed by more bytes", async () => {
    emu.answer = (req) => jsonAnswer(`${answerBody(req, SUCCESS())} {}`, 200, [shop]);
    expect(exitCodes(await runAll())).toEqual(everyKit(2));
  });

  test("a pinned-key signed JSON array", async () => {
    emu.answer = (req) => jsonAnswer(`[${answerBody(req, SUCCESS())}]`, 200, [shop]);
    expect(exitCodes(await runAll())).toEqual(everyKit(2));
  });

  test("a pinned-key signed success under a 403, and a signed refusal under a 200", async () => {
    emu.answer = (req) => honest(req, SUCCESS(), 403);
    expect(exitCodes(await runAll())).toEqual(everyKit(2));
    emu.answer = (req) => honest(req, { success: false, message: "Key banned" }, 200);
    expect(exitCodes(await runAll())).toEqual(everyKit(2));
  });

  for (const [what, fields] of [
    ['"success":"true"', { ...SUCCESS(), success: "true" }],
    ['"success":1', { ...SUCCESS(), success: 1 }],
    ["days as a string", { ...SUCCESS(), days: "30" }],
    ["hours as true", { ...SUCCESS(), hours: true }],
    ["negative days", { ...SUCCESS(), days: -1 }],
    ["fractional hours", { ...SUCCESS(), hours: 1.5 }],
    ["no expires_at", { ...SUCCESS(), expires_at: undefined }],
    ["no message", { ...SUCCESS(), message: undefined }],
  ] as const) {
    test(`a pinned-key signed success with ${what}`, async () => {
      emu.answer = (req) => honest(req, fields as Record<string, unknown>);
      expect(exitCodes(await runAll())).toEqual(everyKit(2));
    });
  }

  const headers: [string, (body: string) => string][] = [
    ["empty", () => ""],
    ["without a colon", () => "garbage"],
    ["with an empty signature", () => `${shop.id}:`],
    ["with a signature that is not base64", () => `${shop.id}:${"!".repeat(86)}==`],
    ["with a 63-byte signature", () => `${shop.id}:${Buffer.alloc(63, 7).toString("base64")}`],
    ["with an 8 kB signature", () => `${shop.id}:${"A".repeat(8_000)}`],
    [
      "with a thousand entries",
      () =>
        Array(1000)
          .fill(`${shop.id}:${"A".repeat(86)}==`)
          .join(","),
    ],
    ["of commas and colons", () => ",:,:,,::,"],
    [
      "with the pinned key id past the first eight entries",
      (b) => [...Array(8).fill(`${cracker.id}:${"A".repeat(86)}==`), signatureHeader(b, [shop])].join(", "),
    ],
  ];
  for (const [what, header] of headers) {
    test(`an X-Signature header ${what} (and no crash)`, async () => {
      emu.answer = (req) => {
        const body = answerBody(req, SUCCESS());
        return new Response(body, { headers: { "x-signature": header(body) } });
      };
      const results = await runAll();
      expect(exitCodes(results)).toEqual(everyKit(2));
      for (const r of Object.values(results)) expect(r.err).toStartWith("untrusted: ");
    });
  }

  test("an answer of a megabyte is not read to the end", async () => {
    emu.answer = (req) => jsonAnswer(answerBody(req, SUCCESS(), { padding: "x".repeat(1 << 20) }), 200, [shop]);
    const results = await runAll();
    expect(exitCodes(results)).toEqual(everyKit(2));
    for (const r of Object.values(results)) expect(r.err).toContain("too large");
  });

  test("a redirect, even to a server that answers correctly", async () => {
    emu.answer = (req) =>
      req.product === PRODUCT
        ? new Response(null, { status: 307, headers: { location: emu.authUrl("Elsewhere") } })
        : honest(req);
    expect(exitCodes(await runAll())).toEqual(everyKit(2));
  });

  test("no server at all (connection refused)", async () => {
    const results = await runAll(`http://127.0.0.1:${freePort()}/Morpheus%20Private/api/X/auth`);
    expect(exitCodes(results)).toEqual(everyKit(2));
    for (const r of Object.values(results)) expect(r.err).toContain("network error");
  });
});

describe("the C kit builds on Windows", () => {
  // What a Windows loader author can link against: ISO C's library and the kit's three libraries, nothing POSIX.
  const ISO_C = new Set(
    `calloc malloc realloc free printf fprintf snprintf fwrite fputs fputc puts putchar stdout stderr memchr memcmp
     memcpy memmove memset strchr strrchr strcmp strncmp strcspn strspn strlen strstr time`.split(/\s+/),
  );
  test("it calls nothing but standard C, libcurl, libsodium and cJSON", async () => {
    const object = join(tmpdir(), `loader_auth-${process.pid}.o`);
    // Strict C11 hides glibc's POSIX declarations, and without fortify and stack protector no glibc-only symbols.
    const cc = await runToEnd(
      [
        "cc",
        "-std=c11",
        "-O0",
        "-U_FORTIFY_SOURCE",
        "-fno-stack-protector",
        "-c",
        join(import.meta.dir, "../clients/c/loader_auth.c"),
        "-o",
        object,
      ],
      cleanEnv({}),
    );
    expect(cc.err).toBe("");
    const nm = await runToEnd(["nm", "-u", object], cleanEnv({}));
    rmSync(object, { force: true });
    const imported = nm.out
      .split("\n")
      .map((line) => line.trim().split(/\s+/).pop()!)
      .filter(Boolean);
    expect(imported).toContain("crypto_sign_verify_detached");
    const foreign = imported.filter(
      (name) => !ISO_C.has(name) && !/^(cJSON|curl|sodium|crypto|randombytes)_/.test(name),
    );
    expect(foreign).toEqual([]);
  });
});

describe("the kits' command line", () => {
  test("wrong arguments, a public key that is not 32 bytes, or a URL without /api/<product>/auth exit 2", async () => {
    const url = emu.authUrl(PRODUCT);
    for (const args of [
      [],
      [url, KEY, UUID],
      [url, KEY, UUID, Buffer.alloc(31).toString("base64")],
      [url, KEY, UUID, "not base64 at all!"],
      [`${emu.authUrl(PRODUCT)}/more`, KEY, UUID, shop.publicKey],
      ["ftp://example.com/api/X/auth", KEY, UUID, shop.publicKey],
    ]) {
      const results = await runKits(args);
      expect(exitCodes(results)).toEqual(everyKit(2));
      for (const r of Object.values(results)) expect(r.err).toContain("usage");
    }
  });
});
