import { Elysia } from "elysia";
import { log } from "../lib/log.ts";
import { ShopError } from "../shop/errors.ts";

const STATUS: Record<ShopError["code"], number> = { invalid: 422, not_found: 404, conflict: 409, out_of_stock: 409 };

/**
 * What went wrong, for an area that answers its own errors: `message` is the domain's own text (a ShopError);
 * the other kinds are for the area to put in its own words.
 */
export type ErrorProblem = {
  status: number;
  kind: "refused" | "not_found" | "malformed" | "internal";
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

/**
 * The last line of defence: a ShopError that an adapter did not turn into its own answer becomes a 4xx with its
 * message; anything else is a bug, logged with the route, and answered with a generic 500 that leaks nothing.
 * JSON, as the licence API's clients expect, unless the request's area claimed its errors (answerErrorsWith).
 */
export const errorHandling = new Elysia({ name: "error-handling" }).onError(
  { as: "global" },
  ({ code, error, request, set }) => {
    const own = answers.get(request);
    if (error instanceof ShopError) {
      const status = STATUS[error.code];
      if (own) return own({ status, kind: "refused", message: error.message });
      set.status = status;
      return { success: false, message: error.message };
    }
    if (code === "NOT_FOUND") {
      if (own) return own({ status: 404, kind: "not_found" });
      set.status = 404;
      return { success: false, message: "Not found" };
    }
    if (code === "PARSE" || code === "VALIDATION") {
      if (own) return own({ status: 400, kind: "malformed" });
      set.status = 400;
      return { success: false, message: "Malformed request" };
    }
    const url = new URL(request.url);
    log.error("unhandled error", { method: request.method, path: url.pathname, code: String(code), error });
    if (own) return own({ status: 500, kind: "internal" });
    set.status = 500;
    return { success: false, message: "Internal error" };
  },
);
