import { Redis } from "ioredis";
import { log } from "../lib/log.ts";

// Acquire-or-renew in one step, so two processes can never both believe they hold the lease.
const LEASE_SCRIPT = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0`;

const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * The small cache surface the shop needs: JSON values with a TTL, deletion, and fixed-window counters for rate
 * limits. Redis in production, an in-process map for `bun run dev`. Redis trouble never fails a request: reads
 * miss, writes are dropped, counters report "allowed" — each with a log line (at most one every 10 s).
 */
export interface Cache {
  get(key: string): Promise<string | null>;
  /** Stores the value only if the key does not exist; true if stored, false if it existed, null if unknown. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean | null>;
  /**
   * Takes or keeps a lease: succeeds when the key is free or already held by this owner (whose lease is extended
   * by ttlMs). A holder that stops renewing loses it after ttlMs. Null when the cache cannot answer.
   */
  lease(key: string, owner: string, ttlMs: number): Promise<boolean | null>;
  /** Gives a lease back at once, if this owner still holds it. */
  releaseLease(key: string, owner: string): Promise<void>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  del(...keys: string[]): Promise<void>;
  /** Increments a counter that lives ttlMs from its first increment; returns the new count, or null if unknown. */
  hit(key: string, ttlMs: number): Promise<{ count: number; resetMs: number } | null>;
  /**
   * Several counters in one round trip, each incremented by `by` (default 1): the auth API's limiter sends the
   * calls it has counted locally in batches.
   */
  hitAll(entries: { key: string; ttlMs: number; by?: number }[]): Promise<{ count: number; resetMs: number }[] | null>;
  /** Subscribes to a channel across every process that shares this cache; returns an unsubscribe function. */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>>;
  publish(channel: string, message: string): Promise<void>;
  ping(): Promise<boolean>;
  /**
   * Waits up to timeoutMs for the connection; true when connected. Short-lived processes (the CLI) call it so their
   * announcements are not dropped while the client is still connecting; the server never waits on it.
   */
  ready(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
  readonly kind: "redis" | "memory";
}

let lastOutageLog = 0;
function logOutage(op: string, error: unknown): void {
  const now = Date.now();
  if (now - lastOutageLog < 10_000) return;
  lastOutageLog = now;
  log.warn("redis unavailable, degrading", { op, error: (error as Error).message });
}

// For each key: INCRBY, set the expiry when the window starts, atomically; returns count and time left per key.
// ARGV holds (by, ttl) pairs, one per key.
const HIT_SCRIPT = `
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCRBY', key, ARGV[2 * i - 1])
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then redis.call('PEXPIRE', key, ARGV[2 * i]); ttl = tonumber(ARGV[2 * i]) end
  out[#out + 1] = n
  out[#out + 1] = ttl
end
return out`;

/** How long subscribe() waits for Redis before carrying on: the subscription is completed when Redis comes back. */
const SUBSCRIBE_WAIT_MS = 1_000;

type HitCommand = { rateHit(keyCount: number, ...args: (string | number)[]): Promise<number[]> };

export class RedisCache implements Cache {
  readonly kind = "redis" as const;
  private readonly client: Redis & HitCommand;
  private subscriber: Redis | null = null;
  private readonly handlers = new Map<string, Set<(message: string) => void>>();

  constructor(
    private readonly url: string,
    private readonly prefix = "mph:",
  ) {
    this.client = new Redis(url, {
      keyPrefix: prefix,
      // Fail fast while Redis is down instead of queueing requests behind a reconnect.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2_000,
      commandTimeout: 1_000,
      retryStrategy: (times) => Math.min(times * 200, 2_000),
      lazyConnect: false,
    }) as Redis & HitCommand;
    // A defined command runs by EVALSHA: the script is sent once, not on every auth call.
    this.client.defineCommand("rateHit", { lua: HIT_SCRIPT });
    this.client.on("error", (error) => logOutage("connection", error));
  }

  async get(key: string): Promise<string | null> {
    try {
      return await this.client.get(key);
    } catch (error) {
      logOutage("get", error);
      return null;
    }
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    try {
      await this.client.set(key, value, "PX", ttlMs);
    } catch (error) {
      logOutage("set", error);
    }
  }

  async del(...keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    try {
      await this.client.del(...keys);
    } catch (error) {
      logOutage("del", error);
    }
  }

  async hit(key: string, ttlMs: number): Promise<{ count: number; resetMs: number } | null> {
    return (await this.hitAll([{ key, ttlMs }]))?.[0] ?? null;
  }

  async hitAll(
    entries: { key: string; ttlMs: number; by?: number }[],
  ): Promise<{ count: number; resetMs: number }[] | null> {
    if (entries.length === 0) return [];
    try {
      const flat = await this.client.rateHit(
        entries.length,
        ...entries.map((e) => e.key),
        ...entries.flatMap((e) => [e.by ?? 1, e.ttlMs]),
      );
      return entries.map((_, i) => ({ count: flat[2 * i] ?? 0, resetMs: flat[2 * i + 1] ?? 0 }));
    } catch (error) {
      logOutage("hit", error);
      return null;
    }
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>> {
    if (!this.subscriber) {
      // Commands wait for the connection however long Redis is away, so a subscription made during an outage
      // is completed when Redis comes back (and ioredis re-subscribes after every reconnect).
      this.subscriber = new Redis(this.url, {
        maxRetriesPerRequest: null,
        retryStrategy: (times) => Math.min(times * 200, 2_000),
      });
      this.subscriber.on("error", (error) => logOutage("subscribe", error));
      this.subscriber.on("message", (ch: string, message: string) => {
        const name = ch.slice(this.prefix.length);
        for (const handler of this.handlers.get(name) ?? []) handler(message);
      });
    }
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      const subscribed = this.subscriber
        .subscribe(this.prefix + channel)
        .catch((error) => logOutage("subscribe", error));
      // Never hold up the start of the shop behind a Redis outage.
      await Promise.race([subscribed, Bun.sleep(SUBSCRIBE_WAIT_MS)]);
    }
    set.add(onMessage);
    return async () => {
      set.delete(onMessage);
    };
  }

  async publish(channel: string, message: string): Promise<void> {
    try {
      // Pub/sub channels ignore keyPrefix, so prefix them by hand to keep test runs apart.
      await this.client.publish(this.prefix + channel, message);
    } catch (error) {
      logOutage("publish", error);
    }
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean | null> {
    try {
      return (await this.client.set(key, value, "PX", ttlMs, "NX")) === "OK";
    } catch (error) {
      logOutage("setIfAbsent", error);
      return null;
    }
  }

  async lease(key: string, owner: string, ttlMs: number): Promise<boolean | null> {
    try {
      return (await this.client.eval(LEASE_SCRIPT, 1, key, owner, ttlMs)) === 1;
    } catch (error) {
      logOutage("lease", error);
      return null;
    }
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    try {
      await this.client.eval(RELEASE_SCRIPT, 1, key, owner);
    } catch (error) {
      logOutage("releaseLease", error);
    }
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.client.ping()) === "PONG";
    } catch {
      return false;
    }
  }

  async ready(timeoutMs: number): Promise<boolean> {
    if (this.client.status === "ready") return true;
    return await new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.client.off("ready", onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.client.on("ready", onReady);
    });
  }

  async close(): Promise<void> {
    // QUIT lets commands already sent (a last publish) finish; when Redis is away there is nothing to wait for.
    if (this.client.status === "ready") await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
    this.subscriber?.disconnect();
  }
}

/** The cache of `bun run dev`: one process, nothing to share. */
export class MemoryCache implements Cache {
  readonly kind = "memory" as const;
  private readonly values = new Map<string, { value: string; expiresAt: number }>();
  private readonly handlers = new Map<string, Set<(message: string) => void>>();

  private live(key: string): { value: string; expiresAt: number } | undefined {
    const entry = this.values.get(key);
    if (entry && entry.expiresAt <= Date.now()) {
      this.values.delete(key);
      return undefined;
    }
    return entry;
  }

  async get(key: string): Promise<string | null> {
    return this.live(key)?.value ?? null;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    if (this.values.size > 100_000) this.sweep();
    this.values.set(key, { value, expiresAt: Date.now() + ttlMs });
  }

  async del(...keys: string[]): Promise<void> {
    for (const key of keys) this.values.delete(key);
  }

  async hit(key: string, ttlMs: number, by = 1): Promise<{ count: number; resetMs: number }> {
    const entry = this.live(key);
    const now = Date.now();
    if (!entry) {
      await this.set(key, String(by), ttlMs);
      return { count: by, resetMs: ttlMs };
    }
    const count = Number(entry.value) + by;
    entry.value = String(count);
    return { count, resetMs: entry.expiresAt - now };
  }

  async hitAll(entries: { key: string; ttlMs: number; by?: number }[]): Promise<{ count: number; resetMs: number }[]> {
    return await Promise.all(entries.map((e) => this.hit(e.key, e.ttlMs, e.by)));
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>> {
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
    }
    set.add(onMessage);
    return async () => {
      set.delete(onMessage);
    };
  }

  async publish(channel: string, message: string): Promise<void> {
    for (const handler of this.handlers.get(channel) ?? []) queueMicrotask(() => handler(message));
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.live(key)) return false;
    await this.set(key, value, ttlMs);
    return true;
  }

  async lease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    const holder = this.live(key);
    if (holder && holder.value !== owner) return false;
    await this.set(key, owner, ttlMs);
    return true;
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    if (this.live(key)?.value === owner) this.values.delete(key);
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async ready(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.values.clear();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.values) if (entry.expiresAt <= now) this.values.delete(key);
  }
}

export function connectCache(url: string | undefined, prefix?: string): Cache {
  return url ? new RedisCache(url, prefix) : new MemoryCache();
}
