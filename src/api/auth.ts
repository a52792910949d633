import { Elysia } from "elysia";
import type { Config } from "../config.ts";
import { collectFields, MalformedBody, parseBody, readBodyWithin } from "../http/body.ts";
import { addressBucket, clientIp } from "../http/client-ip.ts";
import { pathOf } from "../http/path.ts";
import { tallyAuthCall } from "../http/request-log.ts";
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
 * Every body is read and parsed here, within the budget (a length over it is refused unread), never by Elysia: a
 * body Elysia failed to parse raised its PARSE error past this API's own answers, and the 400 went out unsigned.
 * Any type but JSON or a form reads as no fields (the query string may still carry them).
 */
async function readInput(request: Request): Promise<unknown> {
  if (!request.body) return {};
  const length = request.headers.get("content-length");
  if (length !== null && Number(length) > MAX_BODY_BYTES) return TOO_LARGE;
  // What loaders send, read in one step (the server reads exactly Content-Length bytes, already within the budget).
  if (length !== null && (request.headers.get("content-type") ?? "").toLowerCase().startsWith("application/json")) {
    try {
      return (await request.json()) ?? {};
    } catch {
      return MALFORMED;
    }
  }
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

/** A loader's call as it is answered: the request, and when its handling started (for the request log's tally). */
type Call = { request: Request; started: number };
type Server = Parameters<typeof clientIp>[1];

/**
 * The loader's auth API (docs/licence-api.md): `{BASE_PATH}/api/<product>/auth`. It depends only on Postgres; the
 * bot's state and Redis (rate limits fail open) never stop it from answering. Every answer is signed
 * (docs/licence-api.md#signed-answers).
 */
export function licenceCalls(shop: Shop, config: Pick<Config, "trustedProxies">) {
  const { signing, limits } = shop;

  /**
   * The answer as bytes, signed over exactly those bytes. With an echo (the loader sent a nonce) the plain body gains
   * the request's nonce, product, key and uuid and the server's time; without one it is the plain body byte for byte,
   * as old loaders know it.
   */
  function answer(
    call: Call,
    status: number,
    body: Failure | Success,
    echo: Echo | null,
    headers?: Record<string, string>,
  ): Response | Promise<Response> {
    const pending = signing.ready();
    // Keys not loaded and the database away: the answer (a 503, most likely) goes out unsigned.
    if (pending) return pending.catch(() => {}).then(() => signed(call, status, body, echo, headers));
    return signed(call, status, body, echo, headers);
  }

  function signed(
    call: Call,
    status: number,
    body: Failure | Success,
    echo: Echo | null,
    headers?: Record<string, string>,
  ): Response {
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
    tallyAuthCall(call.request.method, pathOf(call.request.url), status, performance.now() - call.started);
    return new Response(bytes, {
      status,
      headers:
        signature === null
          ? { "content-type": JSON_TYPE, ...headers }
          : { "content-type": JSON_TYPE, "x-signature": signature, ...headers },
    });
  }

  /**
   * One call, start to end: a bug (anything but an unreachable database) is logged in full and answered with a
   * signed 500 that leaks nothing, as the shop's error handler would, which this route does not pass through.
   */
  async function handle(request: Request, server: Server) {
    const call: Call = { request, started: performance.now() };
    try {
      return await respond(call, server);
    } catch (error) {
      log.error("unhandled error", { method: request.method, path: pathOf(request.url), error });
      return answer(call, 500, fail("Internal error"), null);
    }
  }

  async function respond(call: Call, server: Server) {
    const { request } = call;
    const body = await readInput(request);
    // Oversized input is a 400 like any other bad input (docs/licence-api.md#the-answers).
    if (body === TOO_LARGE) {
      const message = `Request too large: key and uuid are at most ${MAX_KEY_LENGTH} characters`;
      return answer(call, 400, fail(message), echoFromQuery(request));
    }
    if (body === MALFORMED) return answer(call, 400, fail("Malformed request"), echoFromQuery(request));

    const query = queryFields(request.url);
    const json = (request.headers.get("content-type") ?? "").toLowerCase().startsWith("application/json");
    const nonce = pick(body, json, query, ["nonce"]);
    // A bad nonce is not echoed: the answer cannot be bound to it.
    const badNonce = nonceProblem(nonce);
    if (badNonce) return answer(call, 400, fail(badNonce), null);

    const product = productFromUrl(request.url);
    const key = pick(body, json, query, ["key"]);
    const hwid = pick(body, json, query, ["uuid", "hwid"]);
    const echo: Echo | null =
      typeof nonce.value === "string"
        ? {
            nonce: nonce.value,
            product: "name" in product ? product.name : null,
            key: asString(key),
            uuid: asString(hwid),
          }
        : null;
    if ("problem" in product) return answer(call, 400, fail(product.problem), echo);
    const problem = inputProblem("key", key, keyStringProblem) ?? inputProblem("uuid", hwid, hwidProblem);
    if (problem) return answer(call, 400, fail(problem), echo);
    const name = product.name;
    // No product is named like this (shop/products/products.ts: 1–64 characters, no "/", no control characters — which
    // Postgres would refuse to even compare), so no need to ask the database.
    if (name.length === 0 || longerThan(name, MAX_PRODUCT_NAME) || name.includes("/") || CONTROL.test(name)) {
      return answer(call, 404, fail("Product not found"), echo);
    }

    const ip = clientIp(request, server, config.trustedProxies);
    // Neither the limits nor the verdict awaits anything on the hot path (a key answered from memory, far below its
    // limits): an await costs a turn of the microtask queue each, and these are thousands of calls a second.
    const counted = limits.licenceCall(ip === null ? "unknown" : addressBucket(ip), key.value as string);
    const rate = counted instanceof Promise ? await counted : counted;
    if (!rate.allowed) {
      return answer(call, 429, fail("Too many requests"), echo, { "retry-after": String(rate.retryAfterS) });
    }

    let result: Awaited<ReturnType<typeof shop.licence.authenticate>>;
    try {
      const verdict = shop.licence.authenticate({
        product: name,
        key: key.value as string,
        hwid: hwid.value as string,
        ip,
      });
      result = verdict instanceof Promise ? await verdict : verdict;
    } catch (error) {
      // Anything but an unreachable database is a bug: handle() logs it in full and answers 500.
      if (!(error instanceof ShopUnavailable)) throw error;
      // Postgres unreachable (keys answered from memory still work): the loader should retry, not give up.
      logUnavailable(error.cause);
      return answer(call, 503, fail("Service temporarily unavailable"), echo, { "retry-after": "5" });
    }
    if (!result.ok) return answer(call, result.status, fail(result.message), echo);
    const success: Success = {
      success: true,
      message: "OK",
      days: result.days,
      hours: result.hours,
      expires_at: result.expiresAt.toISOString(),
    };
    return answer(call, 200, success, echo);
  }

  /** Any method but GET and POST: refused without reading anything, so it can have no effect. */
  const notAllowed = (request: Request) =>
    answer({ request, started: performance.now() }, 405, fail("Method not allowed: use GET or POST"), null, {
      allow: "GET, POST",
    });

  return { handle, notAllowed };
}

export type LicenceCalls = ReturnType<typeof licenceCalls>;

/**
 * The auth API as Elysia routes: what `app.handle()` (the tests) and any URL Bun's own router leaves to Elysia reach.
 * Registered ahead of the shop's hooks (src/server.ts), so these calls meet no hook either way.
 */
export function authApi(calls: LicenceCalls) {
  // parse "none": the body is read by the call itself, within its budget, never by Elysia.
  const options = { parse: "none" } as const;
  return (
    new Elysia({ name: "auth-api" })
      .get("/api/:product/auth", ({ request, server }) => calls.handle(request, server), options)
      .post("/api/:product/auth", ({ request, server }) => calls.handle(request, server), options)
      // Bun runs GET's handler for HEAD: a link checker's HEAD would activate a key and start its clock.
      .head("/api/:product/auth", ({ request }) => calls.notAllowed(request), options)
      .put("/api/:product/auth", ({ request }) => calls.notAllowed(request), options)
      .patch("/api/:product/auth", ({ request }) => calls.notAllowed(request), options)
      .delete("/api/:product/auth", ({ request }) => calls.notAllowed(request), options)
  );
}

/**
 * The same routes for Bun's own router (Bun.serve's `routes`), which then hands a loader's call straight to the
 * handler: Elysia builds every route with what any route of the app needs (a cookie jar, the query parsed, a context
 * object), and on the hot path that was half the time of a call (bench/auth: hot path vs bare Elysia).
 */
export function authBunRoutes(calls: LicenceCalls, basePath: string) {
  const handle = (request: Request, server: Bun.Server<unknown>) => calls.handle(request, server);
  const notAllowed = (request: Request) => calls.notAllowed(request);
  // Keyed as Elysia keys its own routes (an encoded path), so these take their place in the server's table.
  return {
    [`${encodeURI(basePath)}/api/:product/auth`]: {
      GET: handle,
      POST: handle,
      HEAD: notAllowed,
      PUT: notAllowed,
      PATCH: notAllowed,
      DELETE: notAllowed,
    },
  };
}

/** The keys a loader may pin (docs/licence-api.md#the-public-key); public by nature, so no login. */
export function publicKeyApi(shop: Shop) {
  const { signing } = shop;
  return new Elysia({ name: "public-key" }).get("/api/public-key", async ({ set }) => {
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
  });
}
