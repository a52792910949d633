import { Elysia } from "elysia";
import type { Config } from "../config.ts";
import { collectFields, MalformedBody, parseBody, readBodyWithin } from "../http/body.ts";
import { addressBucket, clientIp } from "../http/client-ip.ts";
import { pathOf } from "../http/path.ts";
import { hwidProblem, keyStringProblem, MAX_KEY_LENGTH } from "../lib/keys.ts";
import { log } from "../lib/log.ts";
import { longerThan } from "../lib/text.ts";
import { ShopUnavailable } from "../shop/errors.ts";
import type { Shop } from "../shop/index.ts";
import { MAX_PRODUCT_NAME } from "../shop/products/products.ts";

/**
 * The product segment of /api/<product>/auth, percent-decoded, or why it cannot name a product. The router matched
 * the path as sent while `request.url` is normalised: a dot segment ("/api/../auth", also written %2E%2E) is gone
 * from it, and a lone "%" would reach us undecoded.
 */
function productFromUrl(url: string): { name: string } | { problem: string } {
  const match = /\/api\/([^/]*)\/auth\/?$/.exec(pathOf(url));
  if (!match) return { problem: "Invalid product name in URL: a dot segment (. or ..) is not a product name" };
  try {
    return { name: decodeURIComponent(match[1]!) };
  } catch {
    return { problem: "Invalid product name in URL: broken percent-encoding" };
  }
}

/** What every answer says it is: Elysia's own type for a JSON answer, so old loaders see the same header. */
const JSON_TYPE = "application/json;charset=utf-8";

/** key and uuid are at most 128 characters each: 16 kB leaves room for any encoding and extra fields. */
const MAX_BODY_BYTES = 16 * 1024;
/** Stand in for the body of a request refused unread, and of one that did not parse. */
const TOO_LARGE = Symbol("body too large");
const MALFORMED = Symbol("malformed body");

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Every body is read and parsed here, within the budget, never by Elysia: a body Elysia fails to parse raises its
 * PARSE error past this plugin's own error handler, and the 400 would go out unsigned. Any type but JSON or a
 * form reads as no fields (the query string may still carry them).
 */
async function readInput(request: Request): Promise<unknown> {
  const bytes = await readBodyWithin(request, MAX_BODY_BYTES);
  if (bytes === null) return TOO_LARGE;
  try {
    // The header, not Elysia's normalised type: a multipart body needs its boundary.
    return (await parseBody(bytes, request.headers.get("content-type"))) ?? {};
  } catch (error) {
    if (error instanceof MalformedBody) return MALFORMED;
    throw error;
  }
}

let lastUnavailableLog = 0;
function logUnavailable(error: unknown): void {
  if (Date.now() - lastUnavailableLog < 10_000) return;
  lastUnavailableLog = Date.now();
  log.error("auth API cannot reach the database", { error });
}

type Failure = { success: false; message: string };
type Success = { success: true; message: "OK"; days: number; hours: number; expires_at: string };
const fail = (message: string): Failure => ({ success: false, message });

/**
 * What a signed answer repeats of its request (docs/licence-api.md#the-nonce-answers-bound-to-their-request), so that
 * it cannot be replayed to another request or carried over to another key, PC or product: a signed "success" on its
 * own would be a forgery anyone could reuse.
 */
type Echo = { nonce: string; product: string | null; key: string | null; uuid: string | null };

/**
 * The query string's fields; a name given twice becomes a list, as in a form, for inputProblem to refuse: a
 * loader that sends `key` twice has a bug we should show, not hide by guessing which one it meant.
 */
function queryFields(url: string): Record<string, unknown> {
  const start = url.indexOf("?");
  return start === -1 ? {} : collectFields(new URLSearchParams(url.slice(start + 1)));
}

/**
 * An input as sent: JSON, a form, or the query string (old loaders use GET); body fields win over the query.
 * A form or a query that names a field twice gives a list; a JSON body can send a list only as an array.
 */
type Input = { value: unknown; repeated: boolean };

function pick(body: unknown, bodyIsJson: boolean, query: Record<string, unknown>, names: string[]): Input {
  if (body && typeof body === "object") {
    for (const name of names) {
      const value = (body as Record<string, unknown>)[name];
      if (value !== undefined) return { value, repeated: !bodyIsJson && Array.isArray(value) };
    }
  }
  for (const name of names) {
    const value = query[name];
    if (value !== undefined) return { value, repeated: Array.isArray(value) };
  }
  return { value: undefined, repeated: false };
}

function inputProblem(label: string, input: Input, check: (s: string) => string | null): string | null {
  const { value } = input;
  if (value === undefined || value === null) return `Missing ${label}`;
  if (input.repeated) return `Invalid ${label}: given more than once`;
  if (typeof value !== "string") return `Invalid ${label}: must be a string`;
  const problem = check(value);
  return problem ? `Invalid ${label}: ${problem}` : null;
}

/** What a loader may send as its nonce (docs/licence-api.md#the-request). */
const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;

/** Why a nonce is refused, or null when it is fine or absent (old loaders send none). */
function nonceProblem(input: Input): string | null {
  if (input.value === undefined || input.value === null) return null;
  if (input.repeated) return "Invalid nonce: given more than once";
  if (typeof input.value !== "string") return "Invalid nonce: must be a string";
  if (!NONCE_PATTERN.test(input.value)) return "Invalid nonce: 16 to 128 characters of A-Z a-z 0-9 _ -";
  return null;
}

const asString = (input: Input): string | null => (typeof input.value === "string" ? input.value : null);

/**
 * The echo for an answer to a request whose body could not be read (too large, malformed): what the query string
 * says, if it carries a good nonce; else the answer goes out in the old form, signed but bound to nothing.
 */
function echoFromQuery(request: Request): Echo | null {
  const query = queryFields(request.url);
  const nonce: Input = { value: query.nonce, repeated: Array.isArray(query.nonce) };
  if (typeof nonce.value !== "string" || nonceProblem(nonce) !== null) return null;
  const product = productFromUrl(request.url);
  return {
    nonce: nonce.value,
    product: "name" in product ? product.name : null,
    key: asString(pick(undefined, false, query, ["key"])),
    uuid: asString(pick(undefined, false, query, ["uuid", "hwid"])),
  };
}

type SetLike = { status?: number | string; headers: Record<string, string | number> };

/**
 * The loader's auth API (docs/licence-api.md): `{BASE_PATH}/api/<product>/auth`. It depends only on Postgres; the
 * bot's state and Redis (rate limits fail open) never stop it from answering. Every answer is signed
 * (docs/licence-api.md#signed-answers).
 */
export function authApi(shop: Shop, config: Pick<Config, "trustedProxies">) {
  const { signing, limits } = shop;

  /**
   * The answer as bytes, signed over exactly those bytes. With an echo (the loader sent a nonce) the plain body gains
   * the request's nonce, product, key and uuid and the server's time; without one it is the plain body byte for byte,
   * as old loaders know it.
   */
  async function answer(
    set: SetLike,
    status: number,
    body: Failure | Success,
    echo: Echo | null,
    headers?: Record<string, string>,
  ): Promise<Response> {
    const pending = signing.ready();
    // Keys not loaded and the database away: the answer (a 503, most likely) goes out unsigned.
    if (pending) await pending.catch(() => {});
    let signature: string | null;
    let bytes: Buffer<ArrayBuffer>;
    if (echo === null) {
      const text = JSON.stringify(body);
      bytes = Buffer.from(text);
      signature = signing.repeatableSignatureHeader(text, bytes);
    } else {
      bytes = Buffer.from(
        JSON.stringify(
          Object.assign(body, {
            nonce: echo.nonce,
            product: echo.product,
            key: echo.key,
            uuid: echo.uuid,
            server_time: new Date().toISOString(),
          }),
        ),
      );
      signature = signing.signatureHeader(bytes);
    }
    // The request log reads the status from here.
    set.status = status;
    return new Response(bytes, {
      status,
      headers:
        signature === null
          ? { "content-type": JSON_TYPE, ...headers }
          : { "content-type": JSON_TYPE, "x-signature": signature, ...headers },
    });
  }

  async function handle(ctx: {
    body: unknown;
    request: Request;
    server: Parameters<typeof clientIp>[1];
    set: SetLike;
  }) {
    const { set, request } = ctx;
    // Oversized input is a 400 like any other bad input (docs/licence-api.md#the-answers).
    if (ctx.body === TOO_LARGE) {
      const message = `Request too large: key and uuid are at most ${MAX_KEY_LENGTH} characters`;
      return answer(set, 400, fail(message), echoFromQuery(request));
    }
    if (ctx.body === MALFORMED) return answer(set, 400, fail("Malformed request"), echoFromQuery(request));

    const query = queryFields(request.url);
    const json = (request.headers.get("content-type") ?? "").toLowerCase().startsWith("application/json");
    const nonce = pick(ctx.body, json, query, ["nonce"]);
    // A bad nonce is not echoed: the answer cannot be bound to it.
    const badNonce = nonceProblem(nonce);
    if (badNonce) return answer(set, 400, fail(badNonce), null);

    const product = productFromUrl(request.url);
    const key = pick(ctx.body, json, query, ["key"]);
    const hwid = pick(ctx.body, json, query, ["uuid", "hwid"]);
    const echo: Echo | null =
      typeof nonce.value === "string"
        ? {
            nonce: nonce.value,
            product: "name" in product ? product.name : null,
            key: asString(key),
            uuid: asString(hwid),
          }
        : null;
    if ("problem" in product) return answer(set, 400, fail(product.problem), echo);
    const problem = inputProblem("key", key, keyStringProblem) ?? inputProblem("uuid", hwid, hwidProblem);
    if (problem) return answer(set, 400, fail(problem), echo);
    const name = product.name;
    // No product is named like this (shop/products/products.ts: 1–64 characters, no "/", no control characters — which
    // Postgres would refuse to even compare), so no need to ask the database.
    if (name.length === 0 || longerThan(name, MAX_PRODUCT_NAME) || name.includes("/") || CONTROL.test(name)) {
      return answer(set, 404, fail("Product not found"), echo);
    }

    const ip = clientIp(request, ctx.server, config.trustedProxies);
    const rate = await limits.licenceCall(ip === null ? "unknown" : addressBucket(ip), key.value as string);
    if (!rate.allowed) {
      return answer(set, 429, fail("Too many requests"), echo, { "retry-after": String(rate.retryAfterS) });
    }

    let result: Awaited<ReturnType<typeof shop.licence.authenticate>>;
    try {
      result = await shop.licence.authenticate({
        product: name,
        key: key.value as string,
        hwid: hwid.value as string,
        ip,
      });
    } catch (error) {
      // Anything but an unreachable database is a bug: the error handler logs it in full and answers 500.
      if (!(error instanceof ShopUnavailable)) throw error;
      // Postgres unreachable (keys answered from memory still work): the loader should retry, not give up.
      logUnavailable(error.cause);
      return answer(set, 503, fail("Service temporarily unavailable"), echo, { "retry-after": "5" });
    }
    if (!result.ok) return answer(set, result.status, fail(result.message), echo);
    const success: Success = {
      success: true,
      message: "OK",
      days: result.days,
      hours: result.hours,
      expires_at: result.expiresAt.toISOString(),
    };
    return answer(set, 200, success, echo);
  }

  /** Any method but GET and POST: refused without reading anything, so it can have no effect. */
  const notAllowed = ({ set }: { set: SetLike }) =>
    answer(set, 405, fail("Method not allowed: use GET or POST"), null, { allow: "GET, POST" });

  return (
    new Elysia({ name: "auth-api" })
      .onError({ as: "scoped" }, ({ code, request, set }) => {
        // A body that is not JSON or a form is bad input like any other.
        if (code === "PARSE" || code === "VALIDATION") {
          return answer(set, 400, fail("Malformed request"), echoFromQuery(request));
        }
      })
      // The server accepts 50 MB bodies (build uploads); a loader sends well under 1 kB. Refuse big ones unread.
      .onParse(({ request }) => {
        const length = request.headers.get("content-length");
        if (length !== null && Number(length) > MAX_BODY_BYTES) return TOO_LARGE;
        return request.body ? readInput(request) : {};
      })
      // Only what the handler reads is named here: Elysia then skips the rest (cookies, headers) on every call.
      .get("/api/:product/auth", ({ body, request, server, set }) => handle({ body, request, server, set }))
      .post("/api/:product/auth", ({ body, request, server, set }) => handle({ body, request, server, set }))
      // Bun runs GET's handler for HEAD: a link checker's HEAD would activate a key and start its clock.
      .head("/api/:product/auth", notAllowed)
      .put("/api/:product/auth", notAllowed)
      .patch("/api/:product/auth", notAllowed)
      .delete("/api/:product/auth", notAllowed)
      // The keys a loader may pin (docs/licence-api.md#the-public-key); public by nature, so no login.
      .get("/api/public-key", async ({ set }) => {
        try {
          await signing.ready();
        } catch (error) {
          if (!(error instanceof ShopUnavailable)) throw error;
          logUnavailable(error.cause);
          set.status = 503;
          set.headers["retry-after"] = "5";
          return fail("Service temporarily unavailable");
        }
        return {
          keys: signing.activeKeys().map((k) => ({
            key_id: k.keyId,
            public_key: k.publicKey,
            pem: k.pem,
            created_at: k.createdAt.toISOString(),
          })),
        };
      })
  );
}
