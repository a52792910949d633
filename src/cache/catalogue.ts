import type { Cache } from "./cache.ts";
import { CHANNELS } from "./channels.ts";

/** Redis key of the bot's catalogue (products, prices, stock per duration). */
export const CATALOGUE_CACHE_KEY = "catalogue:v1";

/**
 * A counter bumped by every invalidation. A reader that rebuilt the catalogue from Postgres compares it before and
 * after, and drops what it cached if an invalidation slipped in between (its rows may predate that change).
 */
export const CATALOGUE_GENERATION_KEY = "catalogue:generation";
const GENERATION_TTL_MS = 7 * 24 * 3_600_000;

/**
 * Drops the cached catalogue. Call it after the transaction that changed products, prices or stock has committed,
 * never inside it: a reader in between would cache the old state again.
 */
export async function invalidateCatalogue(deps: { cache: Cache }): Promise<void> {
  await deps.cache.hit(CATALOGUE_GENERATION_KEY, GENERATION_TTL_MS);
  await deps.cache.del(CATALOGUE_CACHE_KEY);
  await deps.cache.publish(CHANNELS.catalogue, "changed");
}
