import { invalidateCatalogue } from "../../cache/catalogue.ts";
import { CHANNELS } from "../../cache/channels.ts";
import type { Tx } from "../../db/client.ts";
import { DURATIONS, type DurationDays, daysLabel, isDuration } from "../../lib/durations.ts";
import { generateKeyString, type KeyStringFault, keyStringFault, maskKey } from "../../lib/keys.ts";
import { log } from "../../lib/log.ts";
import { plainText } from "../../lib/text.ts";
import type { ShopDeps } from "../deps.ts";
import { invalid, notFound, ShopError } from "../errors.ts";
import type { AuthCache } from "../licence/licence.ts";

export const MAX_GENERATE = 10_000;
export const MAX_IMPORT = 100_000;

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
  note: string;
  lastAuthAt: Date | null;
  createdAt: Date;
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
  note: string;
  last_auth_at: Date | null;
  created_at: Date;
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
    note: row.note,
    lastAuthAt: row.last_auth_at,
    createdAt: row.created_at,
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

export function createKeys(deps: ShopDeps, authCache: AuthCache) {
  const { sql, cache } = deps;

  /** Drops cached auth answers for these keys here at once, and in every other process through pub/sub. */
  async function announce(...keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    authCache.forget(keys);
    await cache.publish(CHANNELS.keys, JSON.stringify(keys));
  }

  async function generate(productId: number, days: number, count: number): Promise<string[]> {
    const duration = requireDuration(days);
    if (!Number.isInteger(count) || count < 1 || count > MAX_GENERATE) {
      throw invalid(`Количество — от 1 до ${MAX_GENERATE}`, "count");
    }
    const created: string[] = [];
    // A collision among 2^75 keys is practically impossible; the loop only makes "practically" exact.
    while (created.length < count) {
      const batch = Array.from({ length: count - created.length }, generateKeyString);
      const rows = await sql<{ key: string }[]>`
        insert into keys (product_id, days, key)
        select ${productId}, ${duration}, k from unnest(${batch}::text[]) as k
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
    options: { onProgress?: (progress: { done: number; total: number }) => void; batchSize?: number } = {},
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
          insert into keys (product_id, days, key)
          select ${productId}, ${duration}, k from unnest(${chunk}::text[]) as k
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
  async function importText(productId: number, days: number, text: string): Promise<ImportResult> {
    requireDuration(days);
    return importKeys(productId, days, parseKeyLines(text));
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
  async function issue(productId: number, days: number, toTelegramId?: number, note = ""): Promise<KeyRecord> {
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
  async function resetHwid(where: { key: string } | { id: number }): Promise<KeyRecord> {
    const record = await requireKey(where);
    if (record.state !== "sold") throw invalid("HWID можно сбросить только у проданного ключа", "key");
    await sql`update keys set hwid = null where id = ${record.id}`;
    await announce(record.key);
    log.info("hwid reset", { key: maskKey(record.key) });
    return { ...record, hwid: null };
  }

  /**
   * Bans or unbans a sold key. An unsold key is never banned: allocation does not look at bans, so it would be sold
   * to a buyer whose loader then hears "Key banned" — an unwanted unsold key is deleted instead.
   */
  async function setBanned(where: { key: string } | { id: number }, banned: boolean): Promise<KeyRecord> {
    const record = await requireKey(where);
    if (banned && record.state !== "sold") {
      throw invalid("Забанить можно только проданный ключ; непроданный удалите", "key");
    }
    const [row] = await sql<KeyRow[]>`
      update keys set banned_at = ${banned ? sql`coalesce(banned_at, now())` : null}
      where id = ${record.id} returning *`;
    await announce(record.key);
    log.info(banned ? "key banned" : "key unbanned", { key: maskKey(record.key) });
    return toKeyRecord(row!);
  }

  /** Adds days to an activated key's expiry, or to its duration's start if it has not been activated yet. */
  async function extend(where: { key: string } | { id: number }, days: number): Promise<KeyRecord> {
    if (!Number.isInteger(days) || days < 1 || days > 3650) throw invalid("Продление — от 1 до 3650 дней", "days");
    const record = await requireKey(where);
    if (record.state !== "sold") throw invalid("Продлить можно только проданный ключ", "key");
    if (!record.expiresAt) throw invalid("Ключ ещё не активирован: срок начнётся с первой активации", "key");
    const [row] = await sql<KeyRow[]>`
      update keys set expires_at = greatest(expires_at, now()) + make_interval(days => ${days})
      where id = ${record.id} returning *`;
    await announce(record.key);
    return toKeyRecord(row!);
  }

  async function setNote(where: { key: string } | { id: number }, note: string): Promise<void> {
    const text = plainText(note);
    if (text.length > 500) throw invalid("Заметка длиннее 500 символов", "note");
    const record = await requireKey(where);
    await sql`update keys set note = ${text} where id = ${record.id}`;
  }

  /** Deletes an unsold key. Sold and reserved keys belong to somebody and cannot be deleted. */
  async function remove(where: { key: string } | { id: number }): Promise<void> {
    const record = await requireKey(where);
    const rows = await sql`delete from keys where id = ${record.id} and state = 'available' returning id`;
    if (rows.length === 0) throw invalid("Удалить можно только непроданный ключ", "key");
    await invalidateCatalogue(deps);
    await announce(record.key);
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
    remove,
    compactCounts,
  };
}

export type Keys = ReturnType<typeof createKeys>;
