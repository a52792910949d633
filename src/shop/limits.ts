import { checkRates, type RateDecision, RateLimiter } from "../cache/rate-limit.ts";
import type { ShopDeps } from "./deps.ts";

/** A key's rate-limit counter, named by a digest: whoever can list Redis keys must not read licence keys there. */
export function licenceRateKey(key: string): string {
  return `auth:key:${new Bun.CryptoHasher("sha256").update(key).digest("base64url").slice(0, 22)}`;
}

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
    licenceCall(addressBucket: string, key: string): Promise<RateDecision> {
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
     * True for the first call in each window of `windowMs`, across processes: for a notice that must not be sent
     * again for every buyer who meets the same trouble. False as well when the cache cannot answer.
     */
    async firstIn(name: string, windowMs: number): Promise<boolean> {
      return (await cache.setIfAbsent(name, "1", windowMs)) === true;
    },
  };
}

export type Limits = ReturnType<typeof createLimits>;
