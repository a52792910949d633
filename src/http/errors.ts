import { Elysia } from "elysia";
import { log } from "../lib/log.ts";
import { isUnavailable, ShopError } from "../shop/errors.ts";
import { MalformedBody } from "./body.ts";

/** The HTTP status of each kind of domain refusal: the one map every adapter answers with. */
export const SHOP_ERROR_STATUS: Record<ShopError["code"], number> = {
  invalid: 422,
  not_found: 404,
  conflict: 409,
  out_of_stock: 409,
};

/** A refusal an adapter throws with its status and the words for the person (a stale CSRF token, a 404 id). */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * What went wrong, for an area that answers its own errors: `message` is the domain's or the adapter's own text
 * (a ShopError, a Refusal); the other kinds are for the area to put in its own words.
 */
export type ErrorProblem = {
  status: number;
  kind: "refused" | "not_found" | "malformed" | "unavailable" | "internal";
  message?: string;
};
export type ErrorAnswer = (problem: ErrorProblem) => Response | Promise<Response>;

// Per request, so several apps in one process (tests) never answer with each other's pages.
const answers = new WeakMap<Request, ErrorAnswer>();

/**
 * Claims a request's errors for an area of the site whose clients are not JSON readers (the admin panel, where
 * htmx swaps whatever comes back into the page). Called as the request arrives, before routing: an unknown URL
 * or a body that cannot be parsed fails before any route of the area has run.
 */
export function answerErrorsWith(request: Request, answer: ErrorAnswer): void {
  answers.set(request, answer);
}

/** How long a client should wait before trying again when the database is away. */
const RETRY_AFTER_S = 5;

/** What an error thrown anywhere means to the person who sent the request. */
function problemOf(code: unknown, error: unknown): ErrorProblem | null {
  if (error instanceof ShopError)
    return { status: SHOP_ERROR_STATUS[error.code], kind: "refused", message: error.message };
  if (error instanceof Refusal) return { status: error.status, kind: "refused", message: error.message };
  if (code === "NOT_FOUND") return { status: 404, kind: "not_found" };
  if (code === "PARSE" || code === "VALIDATION" || error instanceof MalformedBody)
    return { status: 400, kind: "malformed" };
  // Not a bug: PostgreSQL cannot be reached right now. A client that retries (AnyPay, a loader, the owner) will
  // get through once it is back, so say so with 503 rather than an internal error.
  if (isUnavailable(error)) return { status: 503, kind: "unavailable" };
  return null;
}

const JSON_MESSAGES: Record<ErrorProblem["kind"], string> = {
  refused: "Refused",
  not_found: "Not found",
  malformed: "Malformed request",
  unavailable: "Service temporarily unavailable",
  internal: "Internal error",
};

/**
 * The last line of defence: a ShopError or Refusal that an adapter did not turn into its own answer becomes a 4xx
 * with its message; a lost database is a 503; anything else is a bug, logged with the route, and answered with a
 * generic 500 that leaks nothing. JSON, as the licence API's clients expect, unless the request's area claimed its
 * errors (answerErrorsWith).
 */
export const errorHandling = new Elysia({ name: "error-handling" }).onError(
  { as: "global" },
  ({ code, error, request, set }) => {
    const own = answers.get(request);
    let problem = problemOf(code, error);
    const path = () => new URL(request.url).pathname;
    if (problem?.kind === "unavailable") {
      log.warn("database unavailable", { method: request.method, path: path(), error: (error as Error).message });
    }
    if (!problem) {
      log.error("unhandled error", { method: request.method, path: path(), code: String(code), error });
      problem = { status: 500, kind: "internal" };
    }
    if (own) return own(problem);
    set.status = problem.status;
    if (problem.kind === "unavailable") set.headers["retry-after"] = String(RETRY_AFTER_S);
    return { success: false, message: problem.message ?? JSON_MESSAGES[problem.kind] };
  },
);
