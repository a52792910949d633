import type { Cache } from "../cache/cache.ts";
import type { Config } from "../config.ts";
import type { Sql } from "../db/client.ts";

/** What every domain service is built from. Only main.ts (and tests) put concrete clients in here. */
export type ShopDeps = {
  sql: Sql;
  cache: Cache;
  config: Config;
};
