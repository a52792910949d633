import type { Sql } from "../../db/client.ts";
import { type DurationDays, isDuration } from "../../lib/durations.ts";
import { maskKey } from "../../lib/keys.ts";
import { log } from "../../lib/log.ts";
import { remaining } from "../../lib/time.ts";
import { asUnavailable } from "../errors.ts";
import { MismatchLog } from "./mismatches.ts";

/**
 * The loader's licence check (docs/licence-api.md#the-answers): key + HWID → success with the time left, or one of the
 * fixed refusals. The hot path — an activated key asked again by its own PC — is one indexed read, or none when the
 * answer is in the in-process cache; nothing is written on it except a "last seen" stamp at most every few minutes per
 * key. An HWID mismatch is counted in memory for the key's timeline and the sharing alerts (mismatches.ts), and
 * written with the others once a second.
 */
export type AuthRefusal = "Key mismatch" | "HWID mismatch" | "Key expired" | "Key banned" | "Product not found";

export type AuthResult =
  | { ok: true; expiresAt: Date; days: number; hours: number }
  | { ok: false; status: 403 | 404; message: AuthRefusal };

/**
 * What the auth decision needs to know about a key, as read in one query. Times are milliseconds since the epoch:
 * a cached answer is then one small object, not three more for Dates.
 */
export type KeySnapshot = {
  id: number;
  state: "available" | "reserved" | "sold";
  days: DurationDays;
  hwid: string | null;
  expiresAt: number | null;
  bannedAt: number | null;
  lastAuthAt: number | null;
};

/** A cached answer: the snapshot itself, with the product it belongs to and when it was read. */
type CachedSnapshot = KeySnapshot & { product: string; at: number };

const LAST_SEEN_EVERY_MS = 5 * 60_000;

/**
 * Recent answers for activated keys, by key string (a key belongs to one product, which the entry remembers). A ban,
 * HWID reset, extension or deletion drops the entry at once in this process and, through the cache's pub/sub, in
 * every other; the TTL bounds staleness if such a message is ever lost (a Redis outage).
 *
 * A database read can race with a change: read the old row, the change commits and is announced, then the old row
 * is cached. So a reader takes `generation` before reading and `put` refuses the row if anything was forgotten since.
 *
 * Memory stays bounded by what can still be used: an entry is only good for `ttlMs`, so entries past it are dropped
 * as new ones come in (the map is in insertion order, oldest first), and a flood of distinct keys stops at
 * `maxEntries`. 10 000 answers is 1 000 distinct keys a second, each held for the whole TTL: only a key asked again
 * within 10 s gains from the cache (a loader retrying or started twice), and a shop's fleet asks far fewer. Every
 * entry held costs about three times its size in resident memory, as the garbage collector lets the heap grow to a
 * multiple of what is live: at 50 000 a flood of distinct keys took the app ~45 MB higher (bench/auth).
 */
export class AuthCache {
  private readonly entries = new Map<string, CachedSnapshot>();
  /** One copy of each product name, however many entries name it (each request decodes its own copy). */
  private readonly names = new Map<string, string>();
  private forgets = 0;
  constructor(
    private readonly ttlMs = 10_000,
    private readonly maxEntries = 10_000,
  ) {}

  /** Changes whenever anything is forgotten; pass the value read before a database lookup to `put`. */
  get generation(): number {
    return this.forgets;
  }

  get(product: string, key: string): KeySnapshot | null {
    const entry = this.entries.get(key);
    if (!entry || entry.product !== product) return null;
    if (Date.now() - entry.at > this.ttlMs) {
      this.entries.delete(key);
      return null;
    }
    return entry;
  }

  put(product: string, key: string, snapshot: KeySnapshot, generation: number): void {
    if (generation !== this.forgets) return;
    const now = Date.now();
    for (const [k, entry] of this.entries) {
      if (now - entry.at <= this.ttlMs) break;
      this.entries.delete(k);
    }
    if (this.entries.size >= this.maxEntries) {
      // Map iteration is insertion order: dropping the first entries drops the oldest.
      let drop = Math.ceil(this.maxEntries / 10);
      for (const k of this.entries.keys()) {
        this.entries.delete(k);
        if (--drop === 0) break;
      }
    }
    let name = this.names.get(product);
    if (name === undefined) {
      if (this.names.size >= 1_000) this.names.clear();
      name = product;
      this.names.set(name, name);
    }
    this.entries.delete(key);
    this.entries.set(key, { ...snapshot, product: name, at: now });
  }

  /** How many answers are held (for tests and the benchmark's memory figures). */
  get size(): number {
    return this.entries.size;
  }

  /** Forgets every cached answer for these key strings. */
  forget(keys: string[]): void {
    this.forgets++;
    for (const key of keys) this.entries.delete(key);
  }

  clear(): void {
    this.forgets++;
    this.entries.clear();
    this.names.clear();
  }
}

type LookupRow = {
  product_id: string;
  id: string | null;
  state: KeySnapshot["state"] | null;
  days: number | null;
  hwid: string | null;
  expires_at: Date | null;
  banned_at: Date | null;
  last_auth_at: Date | null;
};

function toSnapshot(row: LookupRow): KeySnapshot | null {
  if (row.id === null || row.state === null || row.days === null || !isDuration(row.days)) return null;
  return {
    id: Number(row.id),
    state: row.state,
    days: row.days,
    hwid: row.hwid,
    expiresAt: row.expires_at?.getTime() ?? null,
    bannedAt: row.banned_at?.getTime() ?? null,
    lastAuthAt: row.last_auth_at?.getTime() ?? null,
  };
}

function success(expiresAt: number, now: Date): AuthResult {
  const at = new Date(expiresAt);
  return { ok: true, expiresAt: at, ...remaining(at, now) };
}

const refuse = (message: AuthRefusal): AuthResult => ({
  ok: false,
  status: message === "Product not found" ? 404 : 403,
  message,
});

/** Stamps waiting for the next write, at most; past that, a new key's stamp is left to its next call (bookkeeping). */
const MAX_PENDING_STAMPS = 20_000;
const STAMPS_EVERY_MS = 1_000;

/**
 * "Last seen" stamps, written in one statement per second instead of one per call. A flood of distinct keys (every
 * loader of a big shop starting at once, or someone trying keys) would otherwise add a write to every read — and,
 * sent without waiting, pile up queries in the client faster than Postgres takes them.
 */
class LastSeenStamps {
  private pending = new Map<number, { ip: string | null; at: Date }>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly sql: Sql) {}

  /** False when the stamp was not taken (too many pending): the caller then tries again at the key's next call. */
  add(id: number, ip: string | null, at: Date): boolean {
    if (this.pending.size >= MAX_PENDING_STAMPS && !this.pending.has(id)) return false;
    this.pending.set(id, { ip, at });
    if (this.timer === null) {
      this.timer = setTimeout(() => void this.flush(), STAMPS_EVERY_MS);
      // A stamp never keeps a process alive; shutdown calls flush() itself.
      this.timer.unref?.();
    }
    return true;
  }

  /** Writes what is pending now (and waits for a write under way). */
  flush(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending;
    this.pending = new Map();
    if (batch.size > 0) this.writing = this.writing.then(() => this.write(batch));
    return this.writing;
  }

  private async write(batch: Map<number, { ip: string | null; at: Date }>): Promise<void> {
    const ids: number[] = [];
    const ips: (string | null)[] = [];
    // As text: the driver cannot send an array of Dates as timestamptz[].
    const ats: string[] = [];
    for (const [id, stamp] of batch) {
      ids.push(id);
      ips.push(stamp.ip);
      ats.push(stamp.at.toISOString());
    }
    try {
      // Never backwards: an activation may have stamped the key after this stamp was taken.
      await this.sql`
        update keys k set
          last_auth_ip = case when k.last_auth_at is null or v.at >= k.last_auth_at then v.ip else k.last_auth_ip end,
          last_auth_at = greatest(k.last_auth_at, v.at)
        from unnest(${ids}::bigint[], ${ips}::text[], ${ats}::text[]::timestamptz[]) as v(id, ip, at)
        where k.id = v.id`;
    } catch (error) {
      log.warn("last-seen stamps not written", { count: ids.length, error: (error as Error).message });
    }
  }
}

/**
 * `onMismatches` hears which keys had HWID mismatches written (once a second at most): the sharing alerts' check.
 */
export function createLicence(
  deps: { sql: Sql },
  authCache: AuthCache,
  hooks: { onMismatches?: (keyIds: number[]) => Promise<void> } = {},
) {
  const { sql } = deps;
  const stamps = new LastSeenStamps(sql);
  const mismatches = new MismatchLog(sql, hooks.onMismatches ?? (async () => {}));

  /** A refusal worth remembering for the key's timeline and the sharing alerts: counted in memory, written later. */
  function noteMismatch(snapshot: KeySnapshot, verdict: AuthResult, hwid: string, ip: string | null, now: Date): void {
    if (!verdict.ok && verdict.message === "HWID mismatch") mismatches.add(snapshot.id, hwid, ip, now.getTime());
  }

  /** Product and key in one round trip: no row → no product; a row without a key → not this product's key. */
  async function lookup(product: string, key: string): Promise<{ product: boolean; key: KeySnapshot | null }> {
    const [row] = await sql<LookupRow[]>`
      select p.id as product_id, k.id, k.state, k.days, k.hwid, k.expires_at, k.banned_at, k.last_auth_at
      from products p
      left join keys k on k.key = ${key} and k.product_id = p.id
      where p.name = ${product}`;
    if (!row) return { product: false, key: null };
    return { product: true, key: toSnapshot(row) };
  }

  /**
   * Binds the HWID if the key is still unbound; the expiry starts only on the very first activation (its duration
   * plus the days renewals added before it). The key's timeline gets its line (key_events 'activated': the PC, the
   * address, first or after a reset) in the same statement: an activation is a write anyway, and its record can then never be lost or told apart from it.
   */
  async function bind(snapshot: KeySnapshot, hwid: string, ip: string | null): Promise<KeySnapshot | null> {
    const first = snapshot.expiresAt === null;
    const [row] = await sql<{ hwid: string; expires_at: Date; activated_at: Date }[]>`
      with bound as (
        update keys set
          hwid = ${hwid},
          activated_at = coalesce(activated_at, now()),
          expires_at = coalesce(expires_at, now() + make_interval(days => days + renewed_days)),
          last_auth_at = now(),
          last_auth_ip = ${ip}
        where id = ${snapshot.id} and state = 'sold' and hwid is null and banned_at is null
          and (expires_at is null or expires_at > now())
        returning id, hwid, expires_at, activated_at
      ), recorded as (
        insert into key_events (key_id, kind, actor, details)
        select id, 'activated', 'loader', jsonb_build_object('uuid', hwid, 'ip', ${ip}::text, 'first', ${first}::boolean)
        from bound
      )
      select hwid, expires_at, activated_at from bound`;
    if (!row) return null;
    return { ...snapshot, hwid: row.hwid, expiresAt: row.expires_at.getTime(), lastAuthAt: Date.now() };
  }

  /** Stamps "last seen" at most every LAST_SEEN_EVERY_MS; `snapshot` (the cached one, on a hit) remembers it. */
  function touch(snapshot: KeySnapshot, ip: string | null, now: Date): void {
    if (snapshot.lastAuthAt !== null && now.getTime() - snapshot.lastAuthAt < LAST_SEEN_EVERY_MS) return;
    // The loader's answer does not depend on this bookkeeping: it is written with the others within a second.
    if (stamps.add(snapshot.id, ip, now)) snapshot.lastAuthAt = now.getTime();
  }

  function decide(snapshot: KeySnapshot | null, hwid: string, now: Date): AuthResult | "bind" {
    if (snapshot?.state !== "sold") return refuse("Key mismatch");
    if (snapshot.bannedAt !== null) return refuse("Key banned");
    if (snapshot.expiresAt !== null && snapshot.expiresAt <= now.getTime()) return refuse("Key expired");
    if (snapshot.hwid === null) return "bind";
    if (snapshot.hwid !== hwid) return refuse("HWID mismatch");
    return success(snapshot.expiresAt!, now);
  }

  /** The verdict; a promise only when the database must be asked (the hot path, answered from memory, awaits nothing). */
  function authenticate(input: {
    product: string;
    key: string;
    hwid: string;
    ip: string | null;
  }): AuthResult | Promise<AuthResult> {
    const now = new Date();
    const cached = authCache.get(input.product, input.key);
    if (cached) {
      const verdict = decide(cached, input.hwid, now);
      if (verdict !== "bind") {
        if (verdict.ok) touch(cached, input.ip, now);
        else noteMismatch(cached, verdict, input.hwid, input.ip, now);
        return verdict;
      }
    }

    return fromDatabase(input, now).catch((error: unknown) => {
      // The loader is told to come back (503), not that its licence failed: a lost database is the shop's trouble.
      throw asUnavailable(error);
    });
  }

  /** The answer for a key that is not in the cache, or must be bound: read (and bind) in the database. */
  async function fromDatabase(
    input: { product: string; key: string; hwid: string; ip: string | null },
    now: Date,
  ): Promise<AuthResult> {
    const generation = authCache.generation;
    const found = await lookup(input.product, input.key);
    if (!found.product) return refuse("Product not found");
    let snapshot = found.key;
    let verdict = decide(snapshot, input.hwid, now);
    if (verdict === "bind" && snapshot) {
      const bound = await bind(snapshot, input.hwid, input.ip);
      if (bound) {
        log.info("key activated", {
          key: maskKey(input.key),
          product: input.product,
          reactivation: snapshot.expiresAt !== null,
        });
        snapshot = bound;
      } else {
        // Another loader bound it (or an admin banned it) between our read and our write: judge the fresh row.
        snapshot = (await lookup(input.product, input.key)).key;
      }
      verdict = decide(snapshot, input.hwid, new Date());
      if (verdict === "bind") verdict = refuse("HWID mismatch");
    }
    if (snapshot && snapshot.state === "sold" && snapshot.hwid !== null) {
      // Stamped first: the cache keeps a copy, which must know the stamp was just sent.
      if (verdict !== "bind" && verdict.ok) touch(snapshot, input.ip, now);
      else if (verdict !== "bind") noteMismatch(snapshot, verdict, input.hwid, input.ip, now);
      authCache.put(input.product, input.key, snapshot, generation);
    }
    return verdict as AuthResult;
  }

  // `lookup` is exported for bench/auth, whose database ceiling runs this very query without HTTP around it.
  // `flush` writes the pending "last seen" stamps and HWID mismatches now: at shutdown, and for tests.
  return {
    authenticate,
    lookup,
    flush: async () => {
      await Promise.all([stamps.flush(), mismatches.flush()]);
    },
  };
}

export type Licence = ReturnType<typeof createLicence>;
