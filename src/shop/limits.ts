import { checkRates, countRates, peekRates, type RateDecision, RateLimiter } from "../cache/rate-limit.ts";
import type { ShopDeps } from "./deps.ts";

/** A key's rate-limit counter, named by a digest: whoever can list Redis keys must not read licence keys there. */
export function licenceRateKey(key: string): string {
  let name = recentRateKeys.get(key);
  if (name === undefined) {
    name = `auth:key:${new Bun.CryptoHasher("sha256").update(key).digest("base64url").slice(0, 22)}`;
    // A loader asks every few seconds with the same key: its digest is computed once, not on every call. Bounded,
    // as keys come from outside; starting over now and then costs one digest per key.
    if (recentRateKeys.size >= MAX_RECENT_RATE_KEYS) recentRateKeys.clear();
    recentRateKeys.set(key, name);
  }
  return name;
}
const recentRateKeys = new Map<string, string>();
const MAX_RECENT_RATE_KEYS = 10_000;

/** Unknown promo codes a buyer may type in the window before the bot stops checking theirs for a while. */
export const PROMO_GUESSES_ALLOWED = 5;
export const PROMO_GUESS_WINDOW_MS = 15 * 60_000;

/**
 * The shop's rate limits, counted in the cache so that every app process counts together. They fail open while
 * Redis is away (a Redis outage must not lock buyers and loaders out); the panel's login limits, which must not, are
 * the accounts' own (accounts/login-limits.ts).
 */
export function createLimits(deps: ShopDeps) {
  const { cache, config } = deps;
  // Counts licence calls in memory and sends them to Redis in batches while far below the limits: no round trip per
  // call on the auth API's hot path.
  const licenceCalls = new RateLimiter(cache);

  return {
    /** A loader's call: AUTH_LIMIT_PER_IP per minute from one address (its bucket), AUTH_LIMIT_PER_KEY per key. */
    licenceCall(addressBucket: string, key: string): RateDecision | Promise<RateDecision> {
      return licenceCalls.check([
        { key: `auth:ip:${addressBucket}`, limit: config.authLimitPerIp, windowMs: 60_000 },
        { key: licenceRateKey(key), limit: config.authLimitPerKey, windowMs: 60_000 },
      ]);
    },

    /** An update from a bot user who is not an admin: `perMinute` of them, then the bot stops answering for a while. */
    botUpdate(userId: number, perMinute: number): Promise<RateDecision> {
      return checkRates(cache, [{ key: `bot:user:${userId}`, limit: perMinute, windowMs: 60_000 }]);
    },

    /**
     * Whether a buyer may try a promo code now: trying codes one after another is not a way to find the owner's
     * private ones. Only unknown codes count (promoGuessFailed); a real code never locks its buyer out.
     */
    promoGuessAllowed(userId: number): Promise<RateDecision> {
      return peekRates(cache, [promoGuessRule(userId)]);
    },

    /** A buyer typed a code that does not exist. */
    async promoGuessFailed(userId: number): Promise<void> {
      await countRates(cache, [promoGuessRule(userId)], 1);
    },

    /**
     * True for the first call in each window of `windowMs`, across processes: for a notice that must not be sent
     * again for every buyer who meets the same trouble. False as well when the cache cannot answer.
     */
    async firstIn(name: string, windowMs: number): Promise<boolean> {
      return (await cache.setIfAbsent(name, "1", windowMs)) === true;
    },
  };
}

const promoGuessRule = (userId: number) => ({
  key: `bot:promo-guess:${userId}`,
  limit: PROMO_GUESSES_ALLOWED,
  windowMs: PROMO_GUESS_WINDOW_MS,
});

export type Limits = ReturnType<typeof createLimits>;
