import { plainLine } from "../../lib/text.ts";
import type { ShopDeps } from "../deps.ts";

export type BotUser = {
  telegramId: number;
  username: string | null;
  firstName: string;
  lastName: string | null;
  languageCode: string | null;
  firstSeenAt: Date;
  lastSeenAt: Date;
  blockedAt: Date | null;
};

export type TelegramProfile = {
  id: number;
  username?: string | undefined;
  firstName?: string | undefined;
  lastName?: string | undefined;
  languageCode?: string | undefined;
};

// Telegram's names are outside input like any other: a NUL in one would make Postgres refuse the whole upsert.
const clip = (s: string | undefined, n: number) => (s === undefined ? null : plainLine(s).slice(0, n));

/** Bot users and their event log (what they did, when). */
export function createUsers(deps: ShopDeps) {
  const { sql } = deps;

  /** Records that a user was seen: creates them on first contact, refreshes names, clears "blocked the bot". */
  async function touch(profile: TelegramProfile): Promise<{ isNew: boolean }> {
    const [row] = await sql<{ is_new: boolean }[]>`
      insert into bot_users (telegram_id, username, first_name, last_name, language_code)
      values (${profile.id}, ${clip(profile.username, 64)}, ${clip(profile.firstName, 128) ?? ""},
              ${clip(profile.lastName, 128)}, ${clip(profile.languageCode, 16)})
      on conflict (telegram_id) do update set
        username = excluded.username, first_name = excluded.first_name, last_name = excluded.last_name,
        language_code = excluded.language_code, last_seen_at = now(), blocked_at = null
      returning (xmax = 0) as is_new`;
    return { isNew: row?.is_new ?? false };
  }

  async function logEvent(userId: number, kind: string, detail: Record<string, unknown> = {}): Promise<void> {
    await sql`
      insert into user_events (user_id, kind, detail)
      values (${userId}, ${kind.slice(0, 64)}, ${sql.json(detail as Parameters<typeof sql.json>[0])})`;
  }

  async function markBlocked(userId: number): Promise<void> {
    await sql`update bot_users set blocked_at = coalesce(blocked_at, now()) where telegram_id = ${userId}`;
  }

  async function byId(telegramId: number): Promise<BotUser | null> {
    const [r] = await sql<
      {
        telegram_id: string;
        username: string | null;
        first_name: string;
        last_name: string | null;
        language_code: string | null;
        first_seen_at: Date;
        last_seen_at: Date;
        blocked_at: Date | null;
      }[]
    >`select * from bot_users where telegram_id = ${telegramId}`;
    if (!r) return null;
    return {
      telegramId: Number(r.telegram_id),
      username: r.username,
      firstName: r.first_name,
      lastName: r.last_name,
      languageCode: r.language_code,
      firstSeenAt: r.first_seen_at,
      lastSeenAt: r.last_seen_at,
      blockedAt: r.blocked_at,
    };
  }

  return { touch, logEvent, markBlocked, byId };
}

export type Users = ReturnType<typeof createUsers>;
