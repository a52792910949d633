/**
 * Morpheus Shop loader kit (TypeScript): asks the shop's licence API whether a key is valid on this PC, and believes
 * the answer only when it is signed by the shop's pinned Ed25519 key and bound to this very request.
 *
 *   bun loader-auth.ts <auth URL> <key> <uuid> <public key base64>
 *   exit 0: licence valid (verified); 1: the verified answer refuses the licence; 2: answer not trusted.
 *
 * Built-ins only (fetch, node:crypto): runs on Bun, and checkLicence() on Node 20+ once transpiled. In your loader,
 * pin the key as a constant instead of taking it from the command line, and call checkLicence().
 *
 * What a cracker tries, and what stops it here:
 *   - an emulator answering {"success":true}: no signature by the pinned key, refused;
 *   - a signature by the cracker's own key, listed in X-Signature: only the entry of the pinned key is used;
 *   - a real signed answer recorded once and replayed: it echoes another nonce (fresh from the CSPRNG each call);
 *   - a real answer for another key, PC or product: the echoed key, uuid and product must equal what we sent;
 *   - one byte of a real answer changed: the signature covers the exact bytes received, never re-serialised JSON;
 *   - a success body under a refusal status (or the reverse): status and body must agree.
 * What it cannot stop is a patched loader: see docs/licence-api.md for what helps there.
 */
import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";

export const VALID = 0;
export const REFUSED = 1;
export const UNTRUSTED = 2;

/** Loader answers are under 1 kB; anything far bigger is not from the shop and is not read to the end. */
const MAX_ANSWER_BYTES = 16_384;
/** A real header carries one entry per active key (two during a rotation); more is noise. */
const MAX_SIGNATURE_ENTRIES = 8;
/** docs/licence-api.md#checking-an-answer: server_time must be within 10 minutes of our clock. */
const MAX_CLOCK_SKEW_MS = 10 * 60_000;
const UTC_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?Z$/;

export type Verified =
  | { verdict: typeof VALID; status: number; days: number; hours: number; expiresAt: string }
  | { verdict: typeof REFUSED; status: number; message: string };

/** The answer cannot be believed: treat it exactly like no answer at all. */
export class Untrusted extends Error {}

export type PinnedKey = { id: string; key: KeyObject };

/** The shop's public key (base64 of the raw 32 bytes) with its id: the first 16 hex of sha256 of those bytes. */
export function pinKey(publicKeyBase64: string): PinnedKey {
  const raw = Buffer.from(publicKeyBase64, "base64");
  if (raw.length !== 32 || raw.toString("base64") !== publicKeyBase64) {
    throw new Error("the public key must be the base64 of 32 bytes (GET .../api/public-key)");
  }
  return {
    id: createHash("sha256").update(raw).digest("hex").slice(0, 16),
    key: createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" }),
  };
}

/**
 * X-Signature: "<key id>:<base64 sig>[, ...]". Only the pinned key's entry counts, checked with the pinned key: an
 * entry for any other key (a cracker's own, say) proves nothing.
 */
function signatureVerifies(header: string, body: Uint8Array, pinned: PinnedKey): boolean {
  for (const entry of header.split(",").slice(0, MAX_SIGNATURE_ENTRIES)) {
    const colon = entry.indexOf(":");
    if (colon < 0 || entry.slice(0, colon).trim() !== pinned.id) continue;
    const encoded = entry.slice(colon + 1).trim();
    const signature = Buffer.from(encoded, "base64");
    // Buffer.from skips what is not base64: insist that it round-trips, so the header means exactly one thing.
    if (signature.length === 64 && signature.toString("base64") === encoded) {
      if (verify(null, body, pinned.key, signature)) return true;
    }
  }
  return false;
}

/** "YYYY-MM-DDTHH:MM:SS[.fraction]Z" to milliseconds since the epoch, or null. */
function utcMillis(value: unknown): number | null {
  const m = typeof value === "string" ? UTC_TIME.exec(value) : null;
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return null;
  return Date.UTC(y, mo - 1, d, h, mi, s);
}

const isCount = (value: unknown): value is number =>
  Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 1_000_000;

type Sent = { nonce: string; key: string; uuid: string; product: string };

/**
 * Everything that decides whether to believe an answer: the HTTP status, the X-Signature header (null when absent)
 * and the exact body bytes. Pure: no network, no clock of its own.
 */
export function verifyAnswer(
  status: number,
  signatureHeader: string | null,
  body: Uint8Array,
  sent: Sent,
  pinned: PinnedKey,
  now: number,
): Verified {
  if (signatureHeader === null) throw new Untrusted("no X-Signature header");
  // Verify before parsing anything: until then the body is a cracker's as much as the shop's.
  if (!signatureVerifies(signatureHeader, body, pinned)) throw new Untrusted("no valid signature by the pinned key");
  let answer: unknown;
  try {
    answer = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(body));
  } catch {
    throw new Untrusted("answer is not JSON");
  }
  if (typeof answer !== "object" || answer === null || Array.isArray(answer)) {
    throw new Untrusted("answer is not a JSON object");
  }
  const a = answer as Record<string, unknown>;
  // Strict equality with strings we sent: a number, null or an array never passes for them.
  if (a.nonce !== sent.nonce) throw new Untrusted("answer is not for this request (nonce differs)");
  if (a.key !== sent.key || a.uuid !== sent.uuid || a.product !== sent.product) {
    throw new Untrusted("answer is for another key, uuid or product");
  }
  const serverTime = utcMillis(a.server_time);
  if (serverTime === null) throw new Untrusted("answer has no valid server_time");
  if (Math.abs(serverTime - now) > MAX_CLOCK_SKEW_MS) {
    throw new Untrusted("server_time is more than 10 minutes from this PC's clock");
  }
  if (typeof a.success !== "boolean" || typeof a.message !== "string") {
    throw new Untrusted("answer has no success or message");
  }
  if (a.success) {
    // A success is only a success with the 200 that goes with it, and with the licence's remaining time.
    if (status !== 200 || !isCount(a.days) || !isCount(a.hours) || utcMillis(a.expires_at) === null) {
      throw new Untrusted("success answer does not match its HTTP status or lacks days/hours/expires_at");
    }
    return { verdict: VALID, status, days: a.days, hours: a.hours, expiresAt: a.expires_at as string };
  }
  if (status < 400 || status > 599) throw new Untrusted("refusal answer does not match its HTTP status");
  return { verdict: REFUSED, status, message: a.message };
}

/** The product segment of ".../api/<product>/auth", percent-decoded as the shop decodes it; null if none. */
export function productFromUrl(authUrl: string): string | null {
  try {
    const url = new URL(authUrl);
    const m = /\/api\/([^/]+)\/auth\/?$/.exec(url.pathname);
    if ((url.protocol !== "https:" && url.protocol !== "http:") || !m) return null;
    const product = decodeURIComponent(m[1]!);
    return product.includes("\0") ? null : product;
  } catch {
    return null;
  }
}

async function readCapped(response: Response): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  if (response.body) {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      length += chunk.length;
      if (length > MAX_ANSWER_BYTES) throw new Untrusted("answer too large");
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks);
}

/** POSTs {key, uuid, nonce} as JSON to the auth URL and verifies the answer; throws Untrusted. */
export async function checkLicence(authUrl: string, key: string, uuid: string, pinned: PinnedKey): Promise<Verified> {
  const product = productFromUrl(authUrl);
  if (product === null) throw new Untrusted("the auth URL has no /api/<product>/auth path");
  // A fresh nonce from the CSPRNG for every call: an answer recorded earlier can never echo it.
  const nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  let status: number;
  let signature: string | null;
  let body: Uint8Array;
  try {
    const response = await fetch(authUrl, {
      method: "POST",
      headers: { "content-type": "application/json", "accept-encoding": "identity" },
      body: JSON.stringify({ key, uuid, nonce }),
      // We verify the answer of the URL we chose; a redirect is an unsigned answer like any other.
      redirect: "manual",
      signal: AbortSignal.timeout(20_000),
    });
    status = response.status;
    // fetch joins repeated headers with ", ", which reads as more entries: only the pinned key's can pass anyway.
    signature = response.headers.get("x-signature");
    body = await readCapped(response);
  } catch (error) {
    if (error instanceof Untrusted) throw error;
    throw new Untrusted(`network error: ${error instanceof Error ? error.message : String(error)}`);
  }
  return verifyAnswer(status, signature, body, { nonce, key, uuid, product }, pinned, Date.now());
}

async function main(args: string[]): Promise<number> {
  if (args.length !== 4) {
    console.error("usage: bun loader-auth.ts <auth URL> <key> <uuid> <public key base64>");
    return UNTRUSTED;
  }
  const [authUrl, key, uuid, publicKey] = args as [string, string, string, string];
  let pinned: PinnedKey;
  try {
    pinned = pinKey(publicKey);
  } catch (error) {
    console.error(`usage: ${(error as Error).message}`);
    return UNTRUSTED;
  }
  if (productFromUrl(authUrl) === null) {
    console.error("usage: the auth URL must look like https://HOST/Morpheus%20Private/api/<product>/auth");
    return UNTRUSTED;
  }
  try {
    const answer = await checkLicence(authUrl, key, uuid, pinned);
    if (answer.verdict === VALID) {
      console.log(`days: ${answer.days}\nhours: ${answer.hours}\nexpires_at: ${answer.expiresAt}`);
    } else {
      console.log(`refused: ${answer.message} (HTTP ${answer.status})`);
    }
    return answer.verdict;
  } catch (error) {
    // Whatever went wrong, never exit 1: a loader reads 1 as "the shop refused", 2 as "no answer to believe".
    console.error(`untrusted: ${error instanceof Error ? error.message : String(error)}`);
    return UNTRUSTED;
  }
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
