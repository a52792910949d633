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
