import { CATALOGUE_CACHE_KEY, CATALOGUE_GENERATION_KEY } from "../../cache/catalogue.ts";
import { CHANNELS } from "../../cache/channels.ts";
import { type DurationDays, isDuration } from "../../lib/durations.ts";
import { log } from "../../lib/log.ts";
import type { ShopDeps } from "../deps.ts";

/**
 * A duration a buyer can choose right now: it has a price and at least one available key. `stars`: its price in
 * Telegram Stars, if it has one.
 */
export type Offer = { days: DurationDays; rub: number; stars: number | null; stock: number };

export type CatalogueProduct = { id: number; name: string; description: string; offers: Offer[] };

/**
 * Invalidation keeps the cache true; the TTL only bounds the damage if an invalidation was lost (Redis restarted
 * between a commit and the DEL).
 */
const CACHE_TTL_MS = 60_000;

type OfferRow = {
  id: string;
  name: string;
  description: string;
  days: number;
  rub: number;
  stars: number | null;
  stock: string;
};

/**
 * What the bot shows: every product on sale with its offered durations, read from the cache and rebuilt from
 * Postgres on a miss. A hit costs one cache read and no SQL, so browsing the shop never touches the database.
 */
export function createCatalogue(deps: ShopDeps) {
  const { sql, cache } = deps;

  /**
   * The catalogue straight from Postgres, one query: products on sale, their prices, available keys per price. The
   * stock comes from key_counts (sql/0007_key_counts.sql), which triggers on keys keep in the same transaction as
   * every change: exact, and a few rows per offer instead of counting up to a million keys on every rebuild.
   */
  async function fromDatabase(): Promise<CatalogueProduct[]> {
    const rows = await sql<OfferRow[]>`
      select p.id, p.name, p.description, pr.days, pr.rub, pr.stars, s.stock
      from products p
      join prices pr on pr.product_id = p.id and pr.rub > 0
      cross join lateral (
        select coalesce(sum(c.n), 0) as stock from key_counts c
        where c.product_id = p.id and c.days = pr.days and c.state = 'available'
      ) s
      where p.archived_at is null and s.stock > 0
      order by p.name, p.id, pr.days`;
    const products: CatalogueProduct[] = [];
    for (const row of rows) {
      if (!isDuration(row.days)) continue;
      const id = Number(row.id);
      let product = products.at(-1);
      if (product?.id !== id) {
        product = { id, name: row.name, description: row.description, offers: [] };
        products.push(product);
      }
      product.offers.push({ days: row.days, rub: row.rub, stars: row.stars, stock: Number(row.stock) });
    }
    return products;
  }

  /** The rebuild under way in this process, if any, and the generation it started from. */
  let rebuilding: { generation: string | null; products: Promise<CatalogueProduct[]> } | null = null;

  async function rebuild(generation: string | null): Promise<CatalogueProduct[]> {
    const products = await fromDatabase();
    await cache.set(CATALOGUE_CACHE_KEY, JSON.stringify(products), CACHE_TTL_MS);
    // A change committed while we were reading may not be in our rows; its invalidation may also have run before
    // our SET. Either way the generation moved, and what we cached must not outlive this call.
    if ((await cache.get(CATALOGUE_GENERATION_KEY)) !== generation) await cache.del(CATALOGUE_CACHE_KEY);
    return products;
  }

  async function view(): Promise<CatalogueProduct[]> {
    const cached = parse(await cache.get(CATALOGUE_CACHE_KEY));
    if (cached) return cached;
    const generation = await cache.get(CATALOGUE_GENERATION_KEY);
    // Misses that arrive together share one rebuild (it counts the stock of every offer): after a change, every
    // buyer browsing at that moment would otherwise run it once each. A rebuild that began before a later change
    // is not shared with callers who came after it.
    let current = rebuilding;
    if (current === null || current.generation !== generation) {
      const started = { generation, products: rebuild(generation) };
      const done = () => {
        if (rebuilding === started) rebuilding = null;
      };
      started.products.then(done, done);
      rebuilding = current = started;
    }
    return current.products;
  }

  async function product(id: number): Promise<CatalogueProduct | null> {
    return (await view()).find((p) => p.id === id) ?? null;
  }

  /**
   * Calls `listener` after every change of products, prices or stock in any process (best effort: announcements
   * travel through Redis). Returns a function that stops listening.
   */
  function onChange(listener: () => void): Promise<() => Promise<void>> {
    return cache.subscribe(CHANNELS.catalogue, () => listener());
  }

  return { view, product, fromDatabase, onChange };
}

function parse(text: string | null): CatalogueProduct[] | null {
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as unknown;
    // A catalogue cached by a process from before Stars prices has offers without `stars`: no Stars price, then.
    if (Array.isArray(value)) {
      const products = value as CatalogueProduct[];
      for (const p of products) for (const o of p.offers) o.stars ??= null;
      return products;
    }
  } catch {
    // A value we cannot read is treated as a miss and overwritten.
  }
  log.warn("unreadable catalogue in cache, rebuilding");
  return null;
}

export type Catalogue = ReturnType<typeof createCatalogue>;
