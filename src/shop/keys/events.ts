import type { Sql, Tx } from "../../db/client.ts";

/**
 * What is recorded of a key's life outside a purchase (the purchase itself — order, payment, delivery — is read from
 * its own tables): one row of `key_events` per thing done to a key, with who did it. The key page's timeline
 * (timeline.ts) reads these beside what the shop already keeps.
 *
 * Who did it, as stored: a panel account, an admin in the bot, the buyer in the bot, the operator's CLI, the shop
 * itself, or a loader through the licence API.
 */
export type Actor = `panel:${string}` | `bot:${number}` | `buyer:${number}` | "cli" | "system" | "loader";

export const actor = {
  panel: (login: string): Actor => `panel:${login}`,
  adminInBot: (telegramId: number): Actor => `bot:${telegramId}`,
  buyer: (telegramId: number): Actor => `buyer:${telegramId}`,
};

/**
 * Every kind of key event and its details. A feature that adds a kind adds one line here and its sentence in
 * templates/key.tsx (KEY_EVENT_SENTENCES, which the compiler holds to this list); no migration is needed.
 */
export type KeyEventDetails = {
  /** A loader bound the key to its PC: the first activation (the expiry starts), or after an HWID reset. */
  activated: { uuid: string; ip: string | null; first: boolean };
  /** The HWID was cleared; `uuid` is the PC it was bound to. From a sharing alert, its id. */
  hwid_reset: { uuid: string | null; alertId?: number };
  banned: { alertId?: number };
  unbanned: Record<string, never>;
  /** An admin added days; `expiresAt` is the new expiry. */
  extended: { days: number; expiresAt: string };
  /**
   * The buyer paid a renewal (order `orderId`) of `days`: `expiresAt` is the new expiry, or null for a key not yet
   * activated, whose clock will run its duration plus `renewedDays` from the first activation.
   */
  renewed: { orderId: number; days: number; expiresAt: string | null; renewedDays: number };
  /** The product's keys were compensated for downtime (keys:compensate, the product page). */
  compensated: { days: number; expiresAt: string };
  note: { note: string };
  /** Sold without payment (keys:issue, «Выдать ключ»), to a Telegram user or to nobody yet. */
  issued: { to: number | null; note: string };
  /** An admin looked at a sharing alert and left the key as it is. */
  alert_ignored: { alertId: number };
};

export type KeyEventKind = keyof KeyEventDetails;

/** Records one event; pass the transaction that makes the change, so the change and its record commit together. */
export async function recordKeyEvent<K extends KeyEventKind>(
  sql: Sql | Tx,
  keyId: number,
  kind: K,
  by: Actor,
  details: KeyEventDetails[K],
): Promise<void> {
  await sql`insert into key_events (key_id, kind, actor, details) values (${keyId}, ${kind}, ${by}, ${sql.json(details)})`;
}
