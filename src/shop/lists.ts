/**
 * What the panel's long lists have in common: each is a keyset page over an index (sql/0003_panel.sql) with search
 * by prefix or exact id, so it stays fast at 100 000 users and 1 000 000 keys. The paging itself is db/keyset.ts.
 */
export type { Page, PageRequest } from "../db/keyset.ts";

const MAX_QUERY = 128;

/** A LIKE pattern matching strings that start with `text`, with LIKE's own wildcards taken literally. */
export function prefixPattern(text: string): string {
  return `${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Control characters never match anything we store, and a NUL makes Postgres refuse the whole query (a 500). */
export function cleanQuery(q: string | undefined): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  const controls = /[\u0000-\u001f\u007f]/g;
  return (q ?? "").replace(controls, "").trim().slice(0, MAX_QUERY);
}

/** A bigint column as postgres returns it (text), or null. */
export const num = (v: string | number | null): number | null => (v === null ? null : Number(v));
