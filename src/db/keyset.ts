import type postgres from "postgres";
import type { Sql } from "./client.ts";

/**
 * Keyset ("seek") pagination for the panel's long lists. A page is found by the last row the reader saw, never by
 * an OFFSET, so page 2 000 of a million keys costs the same index seek as page 1.
 */

/** Where a page starts: after the cursor (the next page in sort order) or before it (the previous page). */
export type PageRequest = { after?: string | undefined; before?: string | undefined; limit?: number | undefined };

export type Page<T> = {
  rows: T[];
  /** Cursor for the page after this one, or null on the last page. */
  next: string | null;
  /** Cursor for the page before this one, or null on the first page. */
  prev: string | null;
};

/**
 * How a list is ordered: by `key` then `id` (unique tie-break), both descending or both ascending. `key` null
 * means the id alone orders the list. `keyType` is the SQL type the key's text form is cast back to.
 */
export type Ordering = {
  key: postgres.Fragment | null;
  keyType?: "timestamptz";
  id: postgres.Fragment;
  descending: boolean;
};

export type Cursor = { key: string | null; id: string };

export const DEFAULT_PAGE_SIZE = 50;
/** The largest batch anyone may ask for: the CSV export reads in batches of this size. */
export const MAX_PAGE_SIZE = 5_000;

const MAX_BIGINT = 9_223_372_036_854_775_807n;

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.key, cursor.id])).toString("base64url");
}

/** A cursor from the query string; anything malformed (hand-edited URL) reads as "no cursor": the first page. */
export function decodeCursor(text: string | undefined): Cursor | null {
  if (!text || text.length > 200) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
    if (!Array.isArray(value) || value.length !== 2) return null;
    const [key, id] = value as unknown[];
    // Beyond bigint's range the ::bigint cast would fail the whole query.
    if (typeof id !== "string" || !/^\d{1,19}$/.test(id) || BigInt(id) > MAX_BIGINT) return null;
    if (key !== null && (typeof key !== "string" || key.length > 64)) return null;
    return { key, id };
  } catch {
    return null;
  }
}

/**
 * Runs a page query. `query(where, orderBy, limit)` must select rows matching the caller's filters AND `where`,
 * ordered by `orderBy`, limited to `limit`, each row carrying `page_key` (the key as text, or null) and `page_id`.
 */
export async function keysetPage<Row extends { page_key: string | null; page_id: string }>(
  sql: Sql,
  ordering: Ordering,
  request: PageRequest,
  query: (where: postgres.Fragment, orderBy: postgres.Fragment, limit: number) => Promise<Row[]>,
): Promise<Page<Row>> {
  const limit = Math.min(Math.max(request.limit ?? DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE);
  const usable = (c: Cursor | null) => (c && keyFits(ordering, c.key) ? c : null);
  const after = usable(decodeCursor(request.after));
  const before = after ? null : usable(decodeCursor(request.before));
  const backwards = before !== null;
  const cursor = after ?? before;

  const where = cursor ? seek(sql, ordering, cursor, backwards) : sql`true`;
  // Reading backwards runs the order in reverse and flips the rows afterwards.
  const descending = ordering.descending !== backwards;
  const direction = descending ? sql`desc` : sql`asc`;
  const orderBy = ordering.key
    ? sql`${ordering.key} ${direction}, ${ordering.id} ${direction}`
    : sql`${ordering.id} ${direction}`;

  const rows = await query(where, orderBy, limit + 1);
  const more = rows.length > limit;
  const pageRows = rows.slice(0, limit);
  if (backwards) pageRows.reverse();
  // A page read backwards that comes up short has reached the start: show the first page instead.
  if (backwards && !more) return keysetPage(sql, ordering, { limit }, query);

  const first = pageRows[0];
  const last = pageRows.at(-1);
  const cursorOf = (row: Row | undefined) => (row ? encodeCursor({ key: row.page_key, id: row.page_id }) : null);
  return {
    rows: pageRows,
    next: backwards || more ? cursorOf(last) : null,
    prev: backwards ? cursorOf(first) : cursor ? cursorOf(first) : null,
  };
}

/** Postgres' text form of a timestamptz (ISO DateStyle), as the list queries select it. */
const TIMESTAMP_TEXT = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?[+-](\d{2})(?::[0-5]\d){0,2}$/;

/**
 * Whether the text names a moment Postgres accepts: the right shape is not enough ("2024-13-45 99:00:00+00" or an
 * offset of +99 hours fail the cast, and with it the whole page).
 */
function realTimestamp(text: string): boolean {
  const m = TIMESTAMP_TEXT.exec(text);
  if (!m) return false;
  const [y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, offset = 0] = m.slice(1, 8).map(Number);
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return (
    t.getUTCFullYear() === y &&
    t.getUTCMonth() === mo - 1 &&
    t.getUTCDate() === d &&
    t.getUTCHours() === h &&
    t.getUTCMinutes() === mi &&
    t.getUTCSeconds() === s &&
    offset <= 15
  );
}

/** A cursor's key must be of the list's kind: a hand-made one would otherwise make the cast fail. */
function keyFits(ordering: Ordering, key: string | null): boolean {
  if (!ordering.key || ordering.keyType !== "timestamptz") return true;
  return key !== null && realTimestamp(key);
}

function seek(sql: Sql, ordering: Ordering, cursor: Cursor, backwards: boolean): postgres.Fragment {
  const towardsSmaller = ordering.descending !== backwards;
  if (!ordering.key || cursor.key === null) {
    return towardsSmaller ? sql`${ordering.id} < ${cursor.id}::bigint` : sql`${ordering.id} > ${cursor.id}::bigint`;
  }
  // Through text on purpose: a parameter typed timestamptz goes through the driver's Date, which drops the
  // microseconds, and rows sharing the millisecond would be skipped.
  const key = ordering.keyType === "timestamptz" ? sql`${cursor.key}::text::timestamptz` : sql`${cursor.key}`;
  return towardsSmaller
    ? sql`(${ordering.key}, ${ordering.id}) < (${key}, ${cursor.id}::bigint)`
    : sql`(${ordering.key}, ${ordering.id}) > (${key}, ${cursor.id}::bigint)`;
}
