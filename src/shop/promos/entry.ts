import type { ShopDeps } from "../deps.ts";

/** How long the bot waits for a promo code after «Ввести промокод» was pressed. */
const AWAIT_TTL_MS = 10 * 60_000;

const awaitKey = (userId: number) => `bot:await-promo:${userId}`;

/**
 * The confirmation a buyer asked to type a promo code on: what the code would apply to — a purchase, or the renewal
 * of the buyer's key `keyId` (its product is the key's).
 */
export type CodeEntry = { productId: number; days: number; rub: number; keyId?: number };

function parseEntry(text: string | null): CodeEntry | null {
  if (!text) return null;
  try {
    const v = JSON.parse(text) as Partial<CodeEntry>;
    if (!Number.isSafeInteger(v.productId) || !Number.isSafeInteger(v.days) || !Number.isSafeInteger(v.rub))
      return null;
    const entry: CodeEntry = { productId: v.productId!, days: v.days!, rub: v.rub! };
    if (Number.isSafeInteger(v.keyId)) entry.keyId = v.keyId!;
    return entry;
  } catch {
    return null;
  }
}

/**
 * A buyer between «Ввести промокод» and the message with the code: kept in the cache, so whichever process receives
 * their next message knows it, and so that it lapses on its own when they walk away.
 */
export function createCodeEntries(deps: ShopDeps) {
  const { cache } = deps;
  return {
    async await(userId: number, entry: CodeEntry): Promise<void> {
      await cache.set(awaitKey(userId), JSON.stringify(entry), AWAIT_TTL_MS);
    },

    /** The purchase the buyer's next message is a code for, or null when the bot is not waiting for one. */
    async awaiting(userId: number): Promise<CodeEntry | null> {
      return parseEntry(await cache.get(awaitKey(userId)));
    },

    /** The code came, or the buyer moved on. */
    async stop(userId: number): Promise<void> {
      await cache.del(awaitKey(userId));
    },
  };
}
