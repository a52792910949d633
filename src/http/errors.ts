import { Elysia } from "elysia";
import { log } from "../lib/log.ts";
import { ShopError } from "../shop/errors.ts";

const STATUS: Record<ShopError["code"], number> = { invalid: 422, not_found: 404, conflict: 409, out_of_stock: 409 };

/**
 * The last line of defence: a ShopError that an adapter did not turn into its own answer becomes a 4xx with its
 * message; anything else is a bug, logged with the route, and answered with a generic 500 that leaks nothing.
 */
export const errorHandling = new Elysia({ name: "error-handling" }).onError(
  { as: "global" },
  ({ code, error, request, set }) => {
    if (error instanceof ShopError) {
      set.status = STATUS[error.code];
      return { success: false, message: error.message };
    }
    if (code === "NOT_FOUND") {
      set.status = 404;
      return { success: false, message: "Not found" };
    }
    if (code === "PARSE" || code === "VALIDATION") {
      set.status = 400;
      return { success: false, message: "Malformed request" };
    }
    const url = new URL(request.url);
    log.error("unhandled error", { method: request.method, path: url.pathname, code: String(code), error });
    set.status = 500;
    return { success: false, message: "Internal error" };
  },
);
