import type { Cache } from "./cache.ts";

export type RateRule = { key: string; limit: number; windowMs: number };
export type RateDecision = { allowed: boolean; retryAfterS: number };
/** A rule's count in its current window, and the time until that window ends. */
export type RateCount = { count: number; resetMs: number };

const ALLOWED: RateDecision = { allowed: true, retryAfterS: 0 };

/**
 * Fixed-window counters held in this process, with the cache's counting rules: the stand-in for limits that must
 * keep holding while Redis is away (the panel login), where failing open would switch off brute-force protection.
 * Each process counts alone and forgets at restart, which is still far better than no limit at all.
 */
export class LocalCounters {
  private readonly counts = new Map<string, { count: number; resetAt: number }>();

  constructor(private readonly maxKeys = 100_000) {}

  hitAll(entries: { key: string; ttlMs: number; by?: number }[]): RateCount[] {
    const now = Date.now();
    if (this.counts.size >= this.maxKeys) this.sweep(now);
    return entries.map(({ key, ttlMs, by = 1 }) => {
      let entry = this.counts.get(key);
      if (!entry || entry.resetAt <= now) {
        // A read (by 0) creates nothing: otherwise cheap reads with invented keys could fill the map and push a
        // refused address's own count out of it.
        if (by === 0) {
          if (entry) this.counts.delete(key);
          return { count: 0, resetMs: 0 };
        }
        entry = { count: 0, resetAt: now + ttlMs };
        this.counts.set(key, entry);
      }
      entry.count += by;
      return { count: entry.count, resetMs: entry.resetAt - now };
    });
  }

  clear(keys: string[]): void {
    for (const key of keys) this.counts.delete(key);
  }

  /** Drops finished windows; if an attack from many addresses still fills the map, the oldest windows go first. */
  private sweep(now: number): void {
    for (const [key, entry] of this.counts) if (entry.resetAt <= now) this.counts.delete(key);
    for (const key of this.counts.keys()) {
      if (this.counts.size < this.maxKeys * 0.9) break;
      this.counts.delete(key);
    }
  }
}

export type RateOptions = {
  /**
   * Where to count while the cache cannot answer. Without it a Redis outage allows everything: right for buyers
   * and loaders, who must never be locked out by our outage.
   */
  whenCacheDown?: LocalCounters;
};

/**
 * Adds `by` (one number for every rule, or one per rule; 0 only reads) to each rule's counter in one round trip
 * and returns the counts. Null when the cache cannot answer and no stand-in was given.
 */
export async function countRates(
  cache: Cache,
  rules: RateRule[],
  by: number | number[],
  options: RateOptions = {},
): Promise<RateCount[] | null> {
  const entries = rules.map((r, i) => ({
    key: `rl:${r.key}`,
    ttlMs: r.windowMs,
    by: typeof by === "number" ? by : (by[i] ?? 1),
  }));
  const hits = await cache.hitAll(entries);
  if (hits) return hits;
  return options.whenCacheDown?.hitAll(entries) ?? null;
}

/** Forgets the counts of these rules (an account given a new password starts with a clean slate). */
export async function clearRates(cache: Cache, keys: string[], options: RateOptions = {}): Promise<void> {
  options.whenCacheDown?.clear(keys.map((k) => `rl:${k}`));
  await cache.del(...keys.map((k) => `rl:${k}`));
}

function decide(rules: RateRule[], counts: RateCount[], blocked: (count: number, limit: number) => boolean) {
  let retryAfterS = 0;
  rules.forEach((rule, i) => {
    const hit = counts[i];
    if (hit && blocked(hit.count, rule.limit)) retryAfterS = Math.max(retryAfterS, Math.ceil(hit.resetMs / 1000), 1);
  });
  return { allowed: retryAfterS === 0, retryAfterS };
}

/**
 * Fixed-window limits kept in the cache so every app process counts together; all rules are counted in one round
 * trip. When the cache cannot answer the request is allowed (a Redis outage must not lock buyers and loaders out),
 * unless `whenCacheDown` gives in-process counters to use meanwhile.
 */
export async function checkRates(cache: Cache, rules: RateRule[], options: RateOptions = {}): Promise<RateDecision> {
  const counts = await countRates(cache, rules, 1, options);
  if (!counts) return ALLOWED;
  return decide(rules, counts, (count, limit) => count > limit);
}

/**
 * Whether any rule is already at its limit, without counting this call: for limits that count only failures (the
 * panel login counts wrong passwords, not logins). Same keys, same fallback rules as checkRates. Reading is an
 * increment by 0, so an outage is told apart from "no failures yet" and the time left comes in the same trip.
 */
export async function peekRates(cache: Cache, rules: RateRule[], options: RateOptions = {}): Promise<RateDecision> {
  const counts = await countRates(cache, rules, 0, options);
  if (!counts) return ALLOWED;
  return decide(rules, counts, (count, limit) => count >= limit);
}

type Counter = {
  /** The window's count in Redis as last heard (all processes); our calls on their way there; calls not sent yet. */
  known: number;
  limit: number;
  sending: number;
  pending: number;
  windowMs: number;
  resetAt: number;
};

/**
 * The same fixed-window limits as checkRates, for the hot auth API: a call far below its limits is counted in
 * memory and sent to Redis in a batch within `flushEveryMs`, so an ordinary call costs no round trip. Once a
 * counter is past half its limit every call goes to Redis at once and is decided on the shared total, so the limit
 * itself is exact in one process and overshoots across processes by at most what the others counted in the last
 * flush interval. A Redis outage fails open, as checkRates does.
 *
 * Once sent, a counter at or below half its limit is forgotten: the next call starts from zero locally, which is
 * exact however far Redis's count is below half (local calls switch to Redis at half the limit), and a loader fleet
 * with a million keys — each asking once — then costs memory for the last flush interval's keys, not the window's.
 */
export class RateLimiter {
  private readonly counters = new Map<string, Counter>();
  private readonly dirty = new Set<string>();
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private lastSweep = Date.now();

  constructor(
    private readonly cache: Cache,
    private readonly flushEveryMs = 50,
    private readonly maxCounters = 100_000,
  ) {}

  /** A decision; a promise only when the call went to Redis (near a limit): the ordinary call awaits nothing. */
  check(rules: RateRule[]): RateDecision | Promise<RateDecision> {
    const now = Date.now();
    const counters: Counter[] = [];
    let exact = false;
    for (const rule of rules) {
      const counter = this.counter(rule, now);
      const estimate = counter.known + counter.sending + counter.pending + 1;
      if (estimate > rule.limit) {
        return { allowed: false, retryAfterS: Math.max(1, Math.ceil((counter.resetAt - now) / 1000)) };
      }
      if (estimate * 2 > rule.limit) exact = true;
      counters.push(counter);
    }
    if (!exact) {
      rules.forEach((rule, i) => {
        counters[i]!.pending++;
        this.dirty.add(rule.key);
      });
      this.scheduleFlush();
      return ALLOWED;
    }
    return this.exactly(rules, counters);
  }

  /** Near a limit: send this call and whatever is pending for these counters, and decide on the shared totals. */
  private async exactly(rules: RateRule[], counters: Counter[]): Promise<RateDecision> {
    const by = counters.map((c) => this.send(c, 1));
    const hits = await this.cache.hitAll(rules.map((r, i) => ({ key: `rl:${r.key}`, ttlMs: r.windowMs, by: by[i] })));
    for (const [i, c] of counters.entries()) this.heard(c, by[i]!, hits?.[i]);
    if (!hits) return ALLOWED;
    let retryAfterS = 0;
    rules.forEach((rule, i) => {
      const hit = hits[i]!;
      if (hit.count > rule.limit) retryAfterS = Math.max(retryAfterS, Math.ceil(hit.resetMs / 1000), 1);
    });
    return { allowed: retryAfterS === 0, retryAfterS };
  }

  /** Counters held in memory (for tests). */
  get size(): number {
    return this.counters.size;
  }

  /** Sends every pending count to Redis now (also run by the timer). */
  async flush(): Promise<void> {
    const batch: { key: string; counter: Counter; by: number }[] = [];
    for (const key of this.dirty) {
      const counter = this.counters.get(key);
      if (counter && counter.pending > 0) batch.push({ key, counter, by: this.send(counter, 0) });
    }
    this.dirty.clear();
    for (let i = 0; i < batch.length; i += 1_000) {
      const chunk = batch.slice(i, i + 1_000);
      const hits = await this.cache.hitAll(
        chunk.map((b) => ({ key: `rl:${b.key}`, ttlMs: b.counter.windowMs, by: b.by })),
      );
      // Without Redis the counts are dropped: failing open, like checkRates.
      for (const [j, b] of chunk.entries()) {
        const hit = hits?.[j];
        this.heard(b.counter, b.by, hit);
        const c = b.counter;
        if (hit && c.pending === 0 && c.sending === 0 && c.known * 2 <= c.limit && this.counters.get(b.key) === c) {
          this.counters.delete(b.key);
        }
      }
    }
    this.sweep();
  }

  /** Moves the pending calls (plus `extra`) to "sending"; returns how many go out. */
  private send(counter: Counter, extra: number): number {
    const by = counter.pending + extra;
    counter.pending = 0;
    counter.sending += by;
    return by;
  }

  /** Redis answered (or not) for `by` calls: its count includes them. */
  private heard(counter: Counter, by: number, hit: { count: number; resetMs: number } | undefined): void {
    counter.sending -= by;
    if (!hit) return;
    counter.known = Math.max(counter.known, hit.count);
    counter.resetAt = Date.now() + hit.resetMs;
  }

  private counter(rule: RateRule, now: number): Counter {
    let counter = this.counters.get(rule.key);
    if (counter && counter.resetAt <= now) {
      // The window is over: Redis has dropped its count too.
      counter.known = 0;
      counter.resetAt = now + rule.windowMs;
    }
    if (!counter) {
      counter = {
        known: 0,
        limit: rule.limit,
        sending: 0,
        pending: 0,
        windowMs: rule.windowMs,
        resetAt: now + rule.windowMs,
      };
      this.counters.set(rule.key, counter);
    }
    return counter;
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      void this.flush();
    }, this.flushEveryMs);
    // Never keep a stopping process alive for a batch of counts.
    this.flushTimer.unref?.();
  }

  /** Forgets finished windows now and then, and everything already sent when too many keys are tracked. */
  private sweep(): void {
    const now = Date.now();
    const tooMany = this.counters.size > this.maxCounters;
    if (!tooMany && now - this.lastSweep < 5_000) return;
    this.lastSweep = now;
    for (const [key, counter] of this.counters) {
      if (counter.pending === 0 && counter.sending === 0 && (tooMany || counter.resetAt <= now))
        this.counters.delete(key);
    }
  }
}
