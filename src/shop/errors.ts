import { isDatabaseUnavailable } from "../db/client.ts";

/**
 * A refusal the person at the other end should read: bad input, a missing thing, a conflict. Adapters turn it into
 * a 4xx, a bot notice or a CLI exit code; anything else that escapes the domain is a bug and is logged as one.
 */
export class ShopError extends Error {
  constructor(
    readonly code: "invalid" | "not_found" | "conflict" | "out_of_stock",
    message: string,
    /** The input field the message is about, so forms can show it next to that field. */
    readonly field?: string,
  ) {
    super(message);
  }
}

export const invalid = (message: string, field?: string) => new ShopError("invalid", message, field);
export const notFound = (message: string, field?: string) => new ShopError("not_found", message, field);
export const conflict = (message: string, field?: string) => new ShopError("conflict", message, field);

/**
 * The shop cannot answer right now: its database cannot be reached. Not a bug and not the caller's fault: worth a
 * 503 and a retry (a loader, AnyPay and the owner all try again), never a 500.
 */
export class ShopUnavailable extends Error {
  constructor(cause: unknown) {
    super("the shop's database cannot be reached", { cause });
  }
}

/** The error as the shop raises it: a lost database becomes ShopUnavailable, anything else stays as it is. */
export function asUnavailable(error: unknown): unknown {
  return isDatabaseUnavailable(error) ? new ShopUnavailable(error) : error;
}

/**
 * Whether an error means "try again later": ShopUnavailable, or a lost database met by a service that passes the
 * driver's error on as it came (most do; the licence check, whose callers must tell the two apart, translates).
 */
export function isUnavailable(error: unknown): boolean {
  return error instanceof ShopUnavailable || isDatabaseUnavailable(error);
}

/** Postgres SQLSTATE of an error from the driver, if it is one. */
export function pgCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
}
