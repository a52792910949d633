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

/** Postgres SQLSTATE of an error from the driver, if it is one. */
export function pgCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
}
