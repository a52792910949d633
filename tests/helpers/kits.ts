import { createHash, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { renameSync } from "node:fs";
import { join } from "node:path";
import { cleanEnv, type Finished, runToEnd } from "./process.ts";

/**
 * The loader kits of clients/ (docs/licence-api.md#loader-kits), run as a loader developer runs them, and "emulators":
 * local servers that answer the kits as a cracker's fake licence server would (or as the real shop does, to prove what
 * a kit accepts).
 */
const ROOT = join(import.meta.dir, "..", "..");
const PYTHON_KIT = join(ROOT, "clients/python/loader_auth.py");

export type Kit = { name: string; run: (args: string[]) => Promise<Finished> };

let cBuild: Promise<void> | undefined;
/** `make -C clients/c`, once per test process (make itself skips it when the binary is newer than the source). */
export function buildCKit(): Promise<void> {
  cBuild ??= (async () => {
    const r = await runToEnd(["make", "-C", join(ROOT, "clients/c")], cleanEnv({}));
    if (r.code !== 0) {
      throw new Error(
        `make -C clients/c failed (needs build-essential libcurl4-openssl-dev libsodium-dev libcjson-dev):\n${r.err}`,
      );
    }
    // The kit is pasted into other people's builds: it must compile without a warning at -Wall -Wextra -Wconversion.
    if (/warning:/.test(r.err)) throw new Error(`clients/c/loader_auth.c compiles with warnings:\n${r.err}`);
  })();
  return cBuild;
}

let sanitizedBuild: Promise<string> | undefined;
/**
 * The C kit once more with AddressSanitizer and UBSan (clients/c/.loader_auth_sanitized, git-ignored): whatever a
 * header or a body holds, a read or write out of bounds or an overflow ends the process with 99 or a signal, never
 * a quiet 2 or 1. Built once per test process, under a temporary name then renamed, so a parallel run never
 * executes a half-written file.
 */
function buildSanitizedCKit(): Promise<string> {
  sanitizedBuild ??= (async () => {
    const binary = join(ROOT, "clients/c/.loader_auth_sanitized");
    const building = `${binary}.${process.pid}`;
    const flags = ["-std=c11", "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"];
    const source = join(ROOT, "clients/c/loader_auth.c");
    const r = await runToEnd(["cc", ...flags, source, "-o", building, "-lcurl", "-lsodium", "-lcjson"], cleanEnv({}));
    if (r.code !== 0) throw new Error(`building the C kit with sanitizers failed:\n${r.err}`);
    renameSync(building, binary);
    return binary;
  })();
  return sanitizedBuild;
}
// Leak checks need ptrace, which some CI containers refuse: off, so that only memory errors decide.
const SANITIZER_ENV = { ASAN_OPTIONS: "exitcode=99:detect_leaks=0", UBSAN_OPTIONS: "print_stacktrace=1" };

/**
 * Debian's python3-nacl and python3-cryptography belong to /usr/bin/python3 (STACK-NOTES). The Python kit uses
 * PyNaCl when it is there and cryptography otherwise: both paths run, the second with PyNaCl hidden from it.
 */
const withoutPyNaCl = (args: string[]) => [
  "/usr/bin/python3",
  "-c",
  "import runpy, sys; sys.modules['nacl'] = None; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
  PYTHON_KIT,
  ...args,
];

const env = () => cleanEnv({});
export const KITS: Kit[] = [
  {
    name: "C",
    run: async (args) => {
      await buildCKit();
      return runToEnd([join(ROOT, "clients/c/loader_auth"), ...args], env());
    },
  },
  {
    name: "C (ASan+UBSan)",
    run: async (args) => runToEnd([await buildSanitizedCKit(), ...args], cleanEnv(SANITIZER_ENV)),
  },
  { name: "Python (PyNaCl)", run: (args) => runToEnd(["/usr/bin/python3", PYTHON_KIT, ...args], env()) },
  { name: "Python (cryptography)", run: (args) => runToEnd(withoutPyNaCl(args), env()) },
  {
    name: "TypeScript",
    run: (args) => runToEnd(["bun", join(ROOT, "clients/typescript/loader-auth.ts"), ...args], env()),
  },
];

/** Runs every kit at once with the same arguments (or arguments made for each kit); results by kit name. */
export async function runKits(args: string[] | ((kit: Kit) => string[])): Promise<Record<string, Finished>> {
  const results = await Promise.all(KITS.map((kit) => kit.run(typeof args === "function" ? args(kit) : args)));
  return Object.fromEntries(KITS.map((kit, i) => [kit.name, results[i]!]));
}

/** The exit code of each kit, by name: one `toEqual` shows every kit that went wrong. */
export function exitCodes(results: Record<string, Finished>): Record<string, number> {
  return Object.fromEntries(Object.entries(results).map(([name, r]) => [name, r.code]));
}

export const everyKit = (code: number): Record<string, number> =>
  Object.fromEntries(KITS.map((kit) => [kit.name, code]));

/** An Ed25519 key pair as the shop publishes it: key id and base64 of the raw 32-byte public key. */
export type SigningKey = { id: string; publicKey: string; privateKey: KeyObject };

export function newSigningKey(): SigningKey {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url");
  return {
    id: createHash("sha256").update(raw).digest("hex").slice(0, 16),
    publicKey: raw.toString("base64"),
    privateKey,
  };
}

/** `X-Signature` over the exact bytes, one entry per key, in the order given (the shop puts the newest first). */
export function signatureHeader(body: string | Uint8Array, keys: SigningKey[]): string {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  return keys.map((k) => `${k.id}:${sign(null, bytes, k.privateKey).toString("base64")}`).join(", ");
}

/** What a kit sent, as an emulator saw it. */
export type KitRequest = {
  product: string;
  key: unknown;
  uuid: unknown;
  nonce: unknown;
  contentType: string | null;
};

/** The answer docs/licence-api.md prescribes for a request with a nonce: the plain body, the echo, server_time. */
export function answerBody(req: KitRequest, fields: Record<string, unknown>, echo: Record<string, unknown> = {}) {
  return JSON.stringify({
    ...fields,
    nonce: req.nonce,
    product: req.product,
    key: req.key,
    uuid: req.uuid,
    server_time: new Date().toISOString(),
    ...echo,
  });
}

export const SUCCESS = (days = 0, hours = 23) => ({
  success: true,
  message: "OK",
  days,
  hours,
  expires_at: new Date(Date.now() + (days * 24 + hours + 0.5) * 3_600_000).toISOString(),
});

export type Emulator = {
  /** The auth URL of a product on this server, percent-encoded as a loader would have it. */
  authUrl: (product: string) => string;
  /** How the server answers; each test sets its own. */
  answer: (req: KitRequest) => Response | Promise<Response>;
  requests: KitRequest[];
  stop: () => Promise<void>;
};

/** A local HTTP server at /Morpheus Private/api/<product>/auth that answers whatever the test tells it to. */
export function startEmulator(): Emulator {
  const emulator: Emulator = {
    authUrl: (product) => `${base}/Morpheus%20Private/api/${encodeURIComponent(product)}/auth`,
    answer: () => new Response("no answer set", { status: 500 }),
    requests: [],
    stop: async () => {
      await server.stop(true);
    },
  };
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: async (request) => {
      const match = /\/api\/([^/]*)\/auth$/.exec(new URL(request.url).pathname);
      const body = (await request.json().catch(() => ({}))) as Record<string, unknown>;
      const req: KitRequest = {
        product: decodeURIComponent(match?.[1] ?? ""),
        key: body.key,
        uuid: body.uuid,
        nonce: body.nonce,
        contentType: request.headers.get("content-type"),
      };
      emulator.requests.push(req);
      return await emulator.answer(req);
    },
  });
  const base = `http://127.0.0.1:${server.port}`;
  return emulator;
}

/** A JSON answer with the given status and, when keys are given, its X-Signature. */
export function jsonAnswer(body: string, status: number, keys: SigningKey[] = []): Response {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (keys.length) headers["x-signature"] = signatureHeader(body, keys);
  return new Response(body, { status, headers });
}
