import { invalidateCatalogue } from "../../cache/catalogue.ts";
import { CHANNELS, FORGET_ALL } from "../../cache/channels.ts";
import type { Tx } from "../../db/client.ts";
import { DURATIONS, type DurationDays, daysLabel, isDuration } from "../../lib/durations.ts";
import { generateKeyString, type KeyStringFault, keyStringFault, maskKey } from "../../lib/keys.ts";
import { log } from "../../lib/log.ts";
import { plainText } from "../../lib/text.ts";
import type { ShopDeps } from "../deps.ts";
import { invalid, notFound, ShopError } from "../errors.ts";
import type { AuthCache } from "../licence/licence.ts";
import { type Actor, recordKeyEvent } from "./events.ts";

export const MAX_GENERATE = 10_000;
export const MAX_IMPORT = 100_000;

/** Compensation for a product's downtime: 1 to 90 days. */
export const MAX_COMPENSATION_DAYS = 90;

/** Keys changed at once beyond which their announcement tells every process to drop all its cached answers. */
const ANNOUNCE_ONE_BY_ONE = 1_000;

/** A line of an import that is not a key, and why (each adapter words the fault for its reader). */
export type BadKeyLine = { line: number; fault: KeyStringFault };

export type ImportResult = { imported: number; duplicates: number; invalid: BadKeyLine[] };

/** Keys read from text: each distinct well-formed key once, how many lines repeated one, and the malformed lines. */
export type KeyLines = { keys: string[]; repeated: number; invalid: BadKeyLine[] };

/**
 * Reads keys from text, one per line: blank lines are ignored, surrounding spaces trimmed; a key repeated in the
 * text counts as a duplicate, a malformed line is reported with its number.
 */
export function parseKeyLines(text: string): KeyLines {
  const seen = new Set<string>();
  const invalid: KeyLines["invalid"] = [];
  let repeated = 0;
  text.split(/\r?\n/).forEach((raw, index) => {
    const key = raw.trim();
    if (key === "") return;
    const fault = keyStringFault(key);
    if (fault) invalid.push({ line: index + 1, fault });
    else if (seen.has(key)) repeated++;
    else seen.add(key);
  });
  return { keys: [...seen], repeated, invalid };
}

export type KeyRecord = {
  id: number;
  productId: number;
  days: DurationDays;
  key: string;
  state: "available" | "reserved" | "sold";
  orderId: number | null;
  buyerId: number | null;
  gift: boolean;
  soldAt: Date | null;
  hwid: string | null;
  activatedAt: Date | null;
  expiresAt: Date | null;
  bannedAt: Date | null;
  /** Days renewals added before the first activation (the clock then runs `days + renewedDays`). */
  renewedDays: number;
  note: string;
  lastAuthAt: Date | null;
  createdAt: Date;
  /** How the key came into the shop, and who added it (null for keys added before the shop recorded it). */
  origin: "generated" | "imported" | null;
  addedBy: Actor | null;
};

/** A row of `keys` as postgres returns it (bigints as text); the key lists add their joined columns to it. */
export type KeyRow = {
  id: string;
  product_id: string;
  days: number;
  key: string;
  state: KeyRecord["state"];
  order_id: string | null;
  buyer_id: string | null;
  gift: boolean;
  sold_at: Date | null;
  hwid: string | null;
  activated_at: Date | null;
  expires_at: Date | null;
  banned_at: Date | null;
  renewed_days: number;
  note: string;
  last_auth_at: Date | null;
  created_at: Date;
  origin: KeyRecord["origin"];
  added_by: Actor | null;
};

export function toKeyRecord(row: KeyRow): KeyRecord {
  return {
    id: Number(row.id),
    productId: Number(row.product_id),
    days: row.days as DurationDays,
    key: row.key,
    state: row.state,
    orderId: row.order_id === null ? null : Number(row.order_id),
    buyerId: row.buyer_id === null ? null : Number(row.buyer_id),
    gift: row.gift,
    soldAt: row.sold_at,
    hwid: row.hwid,
    activatedAt: row.activated_at,
    expiresAt: row.expires_at,
    bannedAt: row.banned_at,
    renewedDays: row.renewed_days,
    note: row.note,
    lastAuthAt: row.last_auth_at,
    createdAt: row.created_at,
    origin: row.origin,
    addedBy: row.added_by,
  };
}

function requireDuration(days: number): DurationDays {
  if (!isDuration(days)) throw invalid(`Длительность должна быть одной из: ${DURATIONS.join(", ")}`, "days");
  return days;
}

/**
 * Takes one available key of a product and duration and locks it for the caller's transaction. SKIP LOCKED hands
 * concurrent buyers different rows instead of queueing them behind one; null means none is left.
 */
export async function allocateKey(
  tx: Tx,
  productId: number,
  days: DurationDays,
): Promise<{ id: number; key: string } | null> {
  const [row] = await tx<{ id: string; key: string }[]>`
    select id, key from keys
    where product_id = ${productId} and days = ${days} and state = 'available'
    order by id
    limit 1
    for update skip locked`;
  return row ? { id: Number(row.id), key: row.key } : null;
}

/**
 * Bans a sold key inside the caller's transaction and records who did it; null when it was banned already (nothing
 * changed, nothing recorded). The caller announces the key after commit, so every process obeys at once.
 */
export async function banKey(
  tx: Tx,
  keyId: number,
  by: Actor,
  details: { alertId?: number } = {},
): Promise<KeyRow | null> {
  const [row] = await tx<KeyRow[]>`
    update keys set banned_at = now() where id = ${keyId} and state = 'sold' and banned_at is null returning *`;
  if (row) await recordKeyEvent(tx, keyId, "banned", by, details);
  return row ?? null;
}

/** Clears a sold key's HWID inside the caller's transaction, recording the PC it was bound to and who did it. */
export async function clearHwid(
  tx: Tx,
  keyId: number,
  by: Actor,
  details: { alertId?: number } = {},
): Promise<KeyRow | null> {
  const [row] = await tx<(KeyRow & { previous: string | null })[]>`
    update keys k set hwid = null
    from (select id, hwid from keys where id = ${keyId} and state = 'sold' for update) old
    where k.id = old.id
    returning k.*, old.hwid as previous`;
  if (!row) return null;
  await recordKeyEvent(tx, keyId, "hwid_reset", by, { uuid: row.previous, ...details });
  return row;
}

export function createKeys(deps: ShopDeps, authCache: AuthCache) {
  const { sql, cache } = deps;

  /**
   * Drops cached auth answers for these keys here at once, and in every other process through pub/sub. Past a
   * thousand keys (a compensation) every process drops all its answers instead: one small message, and the cache
   * refills from single reads within seconds.
   */
  async function announce(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    if (keys.length > ANNOUNCE_ONE_BY_ONE) {
      authCache.clear();
      await cache.publish(CHANNELS.keys, FORGET_ALL);
      return;
    }
    authCache.forget(keys);
    await cache.publish(CHANNELS.keys, JSON.stringify(keys));
  }

  async function generate(productId: number, days: number, count: number, by: Actor = "system"): Promise<string[]> {
    const duration = requireDuration(days);
    if (!Number.isInteger(count) || count < 1 || count > MAX_GENERATE) {
      throw invalid(`Количество — от 1 до ${MAX_GENERATE}`, "count");
    }
    const created: string[] = [];
    // A collision among 2^75 keys is practically impossible; the loop only makes "practically" exact.
    while (created.length < count) {
      const batch = Array.from({ length: count - created.length }, generateKeyString);
      const rows = await sql<{ key: string }[]>`
        insert into keys (product_id, days, key, origin, added_by)
        select ${productId}, ${duration}, k, 'generated', ${by} from unnest(${batch}::text[]) as k
        on conflict (key) do nothing
        returning key`;
      created.push(...rows.map((r) => r.key));
    }
    await invalidateCatalogue(deps);
    log.info("keys generated", { productId, days, count });
    return created;
  }

  /**
   * Imports keys read by parseKeyLines. Keys already in the shop count as duplicates. Inserted in batches (one
   * statement each, `on conflict do nothing`) so that `onProgress` can tell how far a big import has got; each
   * batch commits on its own, so what was imported before a failure stays imported.
   */
  async function importKeys(
    productId: number,
    days: number,
    lines: KeyLines,
    options: {
      onProgress?: (progress: { done: number; total: number }) => void;
      batchSize?: number;
      by?: Actor;
    } = {},
  ): Promise<ImportResult> {
    const duration = requireDuration(days);
    const all = lines.keys;
    if (all.length > MAX_IMPORT) throw invalid(`Не больше ${MAX_IMPORT} ключей за раз`, "keys");
    const batchSize = options.batchSize ?? 5_000;
    let imported = 0;
    options.onProgress?.({ done: 0, total: all.length });
    for (let i = 0; i < all.length; i += batchSize) {
      const chunk = all.slice(i, i + batchSize);
      // Counted in the database: returning a row per key would send 100 000 ids back for nothing.
      const [row] = await sql<{ n: number }[]>`
        with added as (
          insert into keys (product_id, days, key, origin, added_by)
          select ${productId}, ${duration}, k, 'imported', ${options.by ?? "system"} from unnest(${chunk}::text[]) as k
          on conflict (key) do nothing
          returning 1
        )
        select count(*)::int as n from added`;
      imported += row!.n;
      options.onProgress?.({ done: Math.min(i + batchSize, all.length), total: all.length });
    }
    if (imported > 0) await invalidateCatalogue(deps);
    const duplicates = all.length - imported + lines.repeated;
    log.info("keys imported", { productId, days, imported, duplicates });
    return { imported, duplicates, invalid: lines.invalid };
  }

  /** Imports keys from text, one per line: parseKeyLines, then importKeys. */
  async function importText(
    productId: number,
    days: number,
    text: string,
    by: Actor = "system",
  ): Promise<ImportResult> {
    requireDuration(days);
    return importKeys(productId, days, parseKeyLines(text), { by });
  }

  async function find(key: string): Promise<KeyRecord | null> {
    const [row] = await sql<KeyRow[]>`select * from keys where key = ${key}`;
    return row ? toKeyRecord(row) : null;
  }

  async function byId(id: number): Promise<KeyRecord | null> {
    const [row] = await sql<KeyRow[]>`select * from keys where id = ${id}`;
    return row ? toKeyRecord(row) : null;
  }

  /**
   * Sells one key without payment (a gift or a support case), optionally to a Telegram user, with a note saying
   * why. The key is marked as a gift so the database's "a sold key has an order or is a gift" rule holds.
   */
  async function issue(
    productId: number,
    days: number,
    toTelegramId?: number,
    note = "",
    by: Actor = "system",
  ): Promise<KeyRecord> {
    const duration = requireDuration(days);
    const text = plainText(note);
    if (text.length > 500) throw invalid("Заметка длиннее 500 символов", "note");
    const row = await sql.begin(async (tx) => {
      if (toTelegramId !== undefined) {
        await tx`insert into bot_users (telegram_id) values (${toTelegramId}) on conflict do nothing`;
      }
      const key = await allocateKey(tx, productId, duration);
      if (!key) return null;
      const [sold] = await tx<KeyRow[]>`
        update keys set state = 'sold', gift = true, sold_at = now(), buyer_id = ${toTelegramId ?? null}, note = ${text}
        where id = ${key.id} returning *`;
      if (toTelegramId !== undefined) {
        await tx`
          insert into user_events (user_id, kind, detail)
          values (${toTelegramId}, 'key_gifted', ${sql.json({ keyId: key.id, productId, days })})`;
      }
      await recordKeyEvent(tx, key.id, "issued", by, { to: toTelegramId ?? null, note: text });
      return sold!;
    });
    if (!row) throw new ShopError("out_of_stock", `Нет свободных ключей на ${daysLabel(duration)}`, "days");
    await invalidateCatalogue(deps);
    log.info("key issued", { productId, days, key: maskKey(row.key), to: toTelegramId ?? null });
    return toKeyRecord(row);
  }

  async function requireKey(where: { key: string } | { id: number }): Promise<KeyRecord> {
    const record = "key" in where ? await find(where.key) : await byId(where.id);
    if (!record) throw notFound("Ключ не найден", "key");
    return record;
  }

  /** Clears the HWID of a sold key; the expiry stays, so the next loader to call rebinds without extending it. */
  async function resetHwid(where: { key: string } | { id: number }, by: Actor = "system"): Promise<KeyRecord> {
    const record = await requireKey(where);
    if (record.state !== "sold") throw invalid("HWID можно сбросить только у проданного ключа", "key");
    const row = await sql.begin((tx) => clearHwid(tx, record.id, by));
    await announce([record.key]);
    log.info("hwid reset", { key: maskKey(record.key), by });
    return row ? toKeyRecord(row) : { ...record, hwid: null };
  }

  /**
   * Bans or unbans a sold key. An unsold key is never banned: allocation does not look at bans, so it would be sold
   * to a buyer whose loader then hears "Key banned" — an unwanted unsold key is deleted instead.
   */
  async function setBanned(
    where: { key: string } | { id: number },
    banned: boolean,
    by: Actor = "system",
  ): Promise<KeyRecord> {
    const record = await requireKey(where);
    if (banned && record.state !== "sold") {
      throw invalid("Забанить можно только проданный ключ; непроданный удалите", "key");
    }
    // Banning a banned key (or unbanning an unbanned one) changes nothing, and records nothing.
    const row = await sql.begin(async (tx) => {
      if (banned) return banKey(tx, record.id, by);
      const [unbanned] = await tx<KeyRow[]>`
        update keys set banned_at = null where id = ${record.id} and banned_at is not null returning *`;
      if (unbanned) await recordKeyEvent(tx, record.id, "unbanned", by, {});
      return unbanned ?? null;
    });
    await announce([record.key]);
    if (row) log.info(banned ? "key banned" : "key unbanned", { key: maskKey(record.key), by });
    return row ? toKeyRecord(row) : ((await byId(record.id)) ?? record);
  }

  /** Adds days to an activated key's expiry (from now, if it has already expired). */
  async function extend(
    where: { key: string } | { id: number },
    days: number,
    by: Actor = "system",
  ): Promise<KeyRecord> {
    if (!Number.isInteger(days) || days < 1 || days > 3650) throw invalid("Продление — от 1 до 3650 дней", "days");
    const record = await requireKey(where);
    if (record.state !== "sold") throw invalid("Продлить можно только проданный ключ", "key");
    if (!record.expiresAt) throw invalid("Ключ ещё не активирован: срок начнётся с первой активации", "key");
    const row = await sql.begin(async (tx) => {
      const [extended] = await tx<KeyRow[]>`
        update keys set expires_at = greatest(expires_at, now()) + make_interval(days => ${days})
        where id = ${record.id} returning *`;
      await recordKeyEvent(tx, record.id, "extended", by, { days, expiresAt: extended!.expires_at!.toISOString() });
      return extended!;
    });
    await announce([record.key]);
    return toKeyRecord(row);
  }

  /** Saves the key's support note; an unchanged note is not recorded again. */
  async function setNote(where: { key: string } | { id: number }, note: string, by: Actor = "system"): Promise<void> {
    const text = plainText(note);
    if (text.length > 500) throw invalid("Заметка длиннее 500 символов", "note");
    const record = await requireKey(where);
    if (record.note === text) return;
    await sql.begin(async (tx) => {
      await tx`update keys set note = ${text} where id = ${record.id}`;
      await recordKeyEvent(tx, record.id, "note", by, { note: text });
    });
  }

  /**
   * Compensates a product's downtime: every activated, unexpired, unbanned key of the product gets `days` more, in
   * one statement (one transaction), each with a line on its timeline. Keys not yet activated lose nothing (their
   * clock has not started), expired and banned ones are not brought back. Returns how many keys moved.
   */
  async function compensate(productId: number, days: number, by: Actor = "system"): Promise<number> {
    if (!Number.isInteger(days) || days < 1 || days > MAX_COMPENSATION_DAYS) {
      throw invalid(`Компенсация — от 1 до ${MAX_COMPENSATION_DAYS} дней`, "days");
    }
    const moved = await sql<{ key: string }[]>`
      with moved as (
        update keys set expires_at = expires_at + make_interval(days => ${days})
        where product_id = ${productId} and state = 'sold' and banned_at is null and expires_at > now()
        returning id, key, expires_at
      ), recorded as (
        insert into key_events (key_id, kind, actor, details)
        select id, 'compensated', ${by},
          jsonb_build_object('days', ${days}::int,
            'expiresAt', to_char(expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
        from moved
      )
      select key from moved`;
    await announce(moved.map((r) => r.key));
    log.info("keys compensated", { productId, days, keys: moved.length, by });
    return moved.length;
  }

  /** Deletes an unsold key. Sold and reserved keys belong to somebody and cannot be deleted. */
  async function remove(where: { key: string } | { id: number }): Promise<void> {
    const record = await requireKey(where);
    const rows = await sql`delete from keys where id = ${record.id} and state = 'available' returning id`;
    if (rows.length === 0) throw invalid("Удалить можно только непроданный ключ", "key");
    await invalidateCatalogue(deps);
    await announce([record.key]);
  }

  /**
   * Folds the stock counts' deltas (sql/0007_key_counts.sql: every reservation, sale and release adds two rows)
   * into one row per product, duration and state. The expiry job runs it every round; any process may, at any time.
   */
  async function compactCounts(): Promise<void> {
    await sql`select compact_key_counts()`;
  }

  return {
    generate,
    importText,
    importKeys,
    find,
    byId,
    issue,
    resetHwid,
    setBanned,
    extend,
    setNote,
    compensate,
    remove,
    announce,
    compactCounts,
  };
}

export type Keys = ReturnType<typeof createKeys>;
