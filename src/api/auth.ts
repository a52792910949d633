import { Elysia } from "elysia";
import { RateLimiter } from "../cache/rate-limit.ts";
import type { Config } from "../config.ts";
import { isDatabaseUnavailable } from "../db/client.ts";
import { MalformedBody, parseBody, readBodyWithin } from "../http/body.ts";
import { clientIp } from "../http/client-ip.ts";
import { pathOf } from "../http/path.ts";
import { hwidProblem, keyStringProblem, MAX_HWID_LENGTH, MAX_KEY_LENGTH } from "../lib/keys.ts";
import { log } from "../lib/log.ts";
import type { Shop } from "../shop/index.ts";
import { MAX_PRODUCT_NAME } from "../shop/products.ts";

/**
 * The product segment of /api/<product>/auth, percent-decoded; null when its encoding is broken (a lone "%"),
 * which the router would otherwise pass through undecoded.
 */
function productFromUrl(url: string): string | null {
  const match = /\/api\/([^/]*)\/auth\/?$/.exec(pathOf(url));
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]!);
  } catch {
    return null;
  }
}

/** key and uuid are at most 128 characters each: 16 kB leaves room for any encoding and extra fields. */
const MAX_BODY_BYTES = 16 * 1024;
/** Stand in for the body of a request refused unread, and of one that did not parse. */
const TOO_LARGE = Symbol("body too large");
const MALFORMED = Symbol("malformed body");

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Refuse a chunked body past the budget, then parse it as Elysia would; a body with a length is Elysia's. */
async function parseChunked(request: Request): Promise<unknown> {
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

/** A key's rate-limit counter, named by a digest: whoever can list Redis keys must not read licence keys there. */
export function licenceRateKey(key: string): string {
  return `auth:key:${new Bun.CryptoHasher("sha256").update(key).digest("base64url").slice(0, 22)}`;
}

type Failure = { success: false; message: string };
const fail = (message: string): Failure => ({ success: false, message });

/** Inputs may come as JSON, a form, or the query string (old loaders use GET); body fields win over the query. */
function pick(body: unknown, query: Record<string, string | undefined>, names: string[]): unknown {
  if (body && typeof body === "object") {
    for (const name of names) {
      const value = (body as Record<string, unknown>)[name];
      if (value !== undefined) return value;
    }
  }
  for (const name of names) if (query[name] !== undefined) return query[name];
  return undefined;
}

function inputProblem(label: string, value: unknown, max: number, check: (s: string) => string | null): string | null {
  if (value === undefined || value === null) return `Missing ${label}`;
  if (typeof value !== "string") return `Invalid ${label}: must be a string`;
  if (value.length > max) return `Invalid ${label}: longer than ${max} characters`;
  const problem = check(value);
  return problem ? `Invalid ${label}: ${problem}` : null;
}

/**
 * The loader's auth API (SPEC §4): `{BASE_PATH}/api/<product>/auth`. It depends only on Postgres; the bot's state
 * and Redis (rate limits fail open) never stop it from answering.
 */
export function authApi(shop: Shop, config: Pick<Config, "trustedProxies" | "authLimitPerIp" | "authLimitPerKey">) {
  // Counts calls in memory and sends them to Redis in batches while far below the limits: no round trip per call.
  const limiter = new RateLimiter(shop.deps.cache);
  async function handle(ctx: {
    body: unknown;
    query: Record<string, string | undefined>;
    request: Request;
    server: Parameters<typeof clientIp>[1];
    set: { status?: number | string; headers: Record<string, string | number> };
  }) {
    const { set } = ctx;
    // SPEC §4: oversized input is a 400 like any other bad input.
    if (ctx.body === TOO_LARGE) {
      set.status = 400;
      return fail(`Request too large: key and uuid are at most ${MAX_KEY_LENGTH} characters`);
    }
    if (ctx.body === MALFORMED) {
      set.status = 400;
      return fail("Malformed request");
    }
    const product = productFromUrl(ctx.request.url);
    const key = pick(ctx.body, ctx.query, ["key"]);
    const hwid = pick(ctx.body, ctx.query, ["uuid", "hwid"]);

    const problem =
      (product === null ? "Invalid product name in URL: broken percent-encoding" : null) ??
      inputProblem("key", key, MAX_KEY_LENGTH, keyStringProblem) ??
      inputProblem("uuid", hwid, MAX_HWID_LENGTH, hwidProblem);
    if (problem) {
      set.status = 400;
      return fail(problem);
    }
    // No product is named like this (SPEC §3: 1–64 characters, no "/", no control characters — which Postgres
    // would refuse to even compare), so no need to ask the database.
    if (
      product === null ||
      product.length === 0 ||
      product.length > MAX_PRODUCT_NAME ||
      product.includes("/") ||
      CONTROL.test(product)
    ) {
      set.status = 404;
      return fail("Product not found");
    }

    const ip = clientIp(ctx.request, ctx.server, config.trustedProxies);
    const rate = await limiter.check([
      { key: `auth:ip:${ip ?? "unknown"}`, limit: config.authLimitPerIp, windowMs: 60_000 },
      { key: licenceRateKey(key as string), limit: config.authLimitPerKey, windowMs: 60_000 },
    ]);
    if (!rate.allowed) {
      set.status = 429;
      set.headers["retry-after"] = rate.retryAfterS;
      return fail("Too many requests");
    }

    let result: Awaited<ReturnType<typeof shop.licence.authenticate>>;
    try {
      result = await shop.licence.authenticate({ product, key: key as string, hwid: hwid as string, ip });
    } catch (error) {
      // Anything but an unreachable database is a bug: the error handler logs it in full and answers 500.
      if (!isDatabaseUnavailable(error)) throw error;
      // Postgres unreachable (keys answered from memory still work): the loader should retry, not give up.
      logUnavailable(error);
      set.status = 503;
      set.headers["retry-after"] = 5;
      return fail("Service temporarily unavailable");
    }
    if (!result.ok) {
      set.status = result.status;
      return fail(result.message);
    }
    return {
      success: true,
      message: "OK",
      days: result.days,
      hours: result.hours,
      expires_at: result.expiresAt.toISOString(),
    };
  }

  return (
    new Elysia({ name: "auth-api" })
      .onError({ as: "scoped" }, ({ code, set }) => {
        // A body that is not JSON or a form is bad input like any other.
        if (code === "PARSE" || code === "VALIDATION") {
          set.status = 400;
          return fail("Malformed request");
        }
      })
      // The server accepts 50 MB bodies (build uploads); a loader sends well under 1 kB. Refuse big ones unread.
      .onParse(({ request }) => {
        const length = request.headers.get("content-length");
        if (length === null) return request.body ? parseChunked(request) : undefined;
        if (Number(length) > MAX_BODY_BYTES) return TOO_LARGE;
      })
      // Only what the handler reads is named here: Elysia then skips the rest (cookies, headers) on every call.
      .get("/api/:product/auth", ({ body, query, request, server, set }) =>
        handle({ body, query, request, server, set }),
      )
      .post("/api/:product/auth", ({ body, query, request, server, set }) =>
        handle({ body, query, request, server, set }),
      )
  );
}
