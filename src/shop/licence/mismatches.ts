import type { Sql } from "../../db/client.ts";
import { log } from "../../lib/log.ts";

/** Distinct (key, foreign PC) pairs held between two writes; past it new pairs wait for a later call (bookkeeping). */
const MAX_PENDING_PAIRS = 20_000;
/** Foreign PCs of one key held between two writes: a loader inventing HWIDs does not fill the memory alone. */
const MAX_PENDING_PER_KEY = 50;
/** Addresses kept per foreign PC (here and in key_mismatches). */
const MAX_IPS = 10;
/** Foreign PCs kept per key in key_mismatches: beyond this a key is shared beyond doubt, and rows stop growing. */
const MAX_STORED_PER_KEY = 200;
const WRITE_EVERY_MS = 1_000;

type Seen = { count: number; first: number; last: number; ips: string[] };

/**
 * HWID mismatches, counted in memory and written once a second in one statement, like the last-seen stamps: a
 * mismatch is usually answered from the auth cache, and recording it must not put a write on that path. A write adds
 * to key_mismatches (per key and foreign PC: count, first and last time, a few addresses) and then hands the keys it
 * touched to `onWritten`, which looks for keys to raise a sharing alert about.
 */
export class MismatchLog {
  private pending = new Map<number, Map<string, Seen>>();
  private pairs = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly sql: Sql,
    private readonly onWritten: (keyIds: number[]) => Promise<void>,
  ) {}

  add(keyId: number, uuid: string, ip: string | null, at: number): void {
    let perKey = this.pending.get(keyId);
    let seen = perKey?.get(uuid);
    if (!seen) {
      if (this.pairs >= MAX_PENDING_PAIRS || (perKey?.size ?? 0) >= MAX_PENDING_PER_KEY) return;
      if (!perKey) {
        perKey = new Map();
        this.pending.set(keyId, perKey);
      }
      seen = { count: 0, first: at, last: at, ips: [] };
      perKey.set(uuid, seen);
      this.pairs++;
    }
    seen.count++;
    seen.last = at;
    if (ip !== null && seen.ips.length < MAX_IPS && !seen.ips.includes(ip)) seen.ips.push(ip);
    if (this.timer === null) {
      this.timer = setTimeout(() => void this.flush(), WRITE_EVERY_MS);
      // Bookkeeping never keeps a process alive; shutdown calls flush() itself.
      this.timer.unref?.();
    }
  }

  /** Writes what is pending now (and waits for a write under way), then the sharing check of the keys it touched. */
  flush(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending;
    this.pending = new Map();
    this.pairs = 0;
    if (batch.size > 0) this.writing = this.writing.then(() => this.write(batch));
    return this.writing;
  }

  private async write(batch: Map<number, Map<string, Seen>>): Promise<void> {
    // In key and PC order: two processes writing the same rows then lock them in the same order, never a deadlock.
    const rows = [...batch]
      .sort(([a], [b]) => a - b)
      .flatMap(([keyId, perKey]) =>
        [...perKey]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([uuid, seen]) => ({
            key_id: keyId,
            uuid,
            count: seen.count,
            first_at: new Date(seen.first).toISOString(),
            last_at: new Date(seen.last).toISOString(),
            ips: seen.ips,
          })),
      );
    try {
      await this.sql`
        insert into key_mismatches as m (key_id, uuid, count, first_at, last_at, ips)
        select v.key_id, v.uuid, v.count, v.first_at, v.last_at, v.ips
        from jsonb_to_recordset(${JSON.stringify(rows)}::text::jsonb)
          as v(key_id bigint, uuid text, count bigint, first_at timestamptz, last_at timestamptz, ips text[])
        where exists (select 1 from keys k where k.id = v.key_id)
          and (exists (select 1 from key_mismatches x where x.key_id = v.key_id and x.uuid = v.uuid)
            or (select count(*) from key_mismatches x where x.key_id = v.key_id) < ${MAX_STORED_PER_KEY})
        on conflict (key_id, uuid) do update set
          count = m.count + excluded.count,
          first_at = least(m.first_at, excluded.first_at),
          last_at = greatest(m.last_at, excluded.last_at),
          ips = array(
            select ip from unnest(m.ips || excluded.ips) with ordinality as u(ip, n)
            group by ip order by min(n) limit ${MAX_IPS})`;
    } catch (error) {
      log.warn("HWID mismatches not written", { pairs: rows.length, error: (error as Error).message });
      return;
    }
    try {
      await this.onWritten([...batch.keys()]);
    } catch (error) {
      log.warn("sharing check after HWID mismatches failed", { error: (error as Error).message });
    }
  }
}
