import postgres from "postgres";

export type Sql = postgres.Sql;
export type Tx = postgres.TransactionSql;

export type DbOptions = {
  /** Pool size. The embedded PGlite serves one connection at a time, so dev runs with 1. */
  max?: number;
};

export function connectDatabase(url: string, options: DbOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    // Bigint ids stay exact as strings in the driver; we convert where we know they fit.
    onnotice: () => {},
    connection: { application_name: "morpheus-shop" },
    idle_timeout: 60,
    connect_timeout: 10,
  });
}

/** Driver codes of a connection that could not be made or was lost. */
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ETIMEDOUT",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);

/**
 * True when an error means "the database cannot be reached right now" — worth a 503 and a retry — rather than a
 * bug or bad input: a lost or refused connection, or the server's connection, resource and shutdown classes
 * (SQLSTATE 08, 53, 57P).
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  return CONNECTION_CODES.has(code) || /^(08|53|57P)/.test(code);
}
