import { CHANNELS } from "../../cache/channels.ts";
import { log } from "../../lib/log.ts";
import { plainLine } from "../../lib/text.ts";
import type { ShopDeps } from "../deps.ts";
import { invalid, notFound } from "../errors.ts";
import type { Messenger } from "../messenger.ts";

export type BotAdmin = {
  telegramId: number;
  note: string;
  createdAt: Date;
  /** The admin as a bot user, when they have written to the bot (the panel has a page for them then). */
  user: { firstName: string | null; lastName: string | null; username: string | null } | null;
};

/** Telegram user ids are positive integers below 2^52 (Telegram's own promise), so a JS number holds them. */
export function parseTelegramId(text: string): number | null {
  if (!/^\s*\d{1,16}\s*$/.test(text)) return null;
  const id = Number(text);
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

/** The Telegram users the bot treats as admins. Kept in memory per process; reloaded when any process changes it. */
export function createAdmins(deps: ShopDeps) {
  const { sql, cache } = deps;
  let ids: Set<number> | null = null;
  // Reloads take turns, so one that started before a change (the periodic reload, an announcement) cannot answer
  // after the reload that follows the change and put the old list back: a removed admin would stay admin.
  let reloading: Promise<unknown> = Promise.resolve();

  async function list(): Promise<BotAdmin[]> {
    const rows = await sql<
      {
        telegram_id: string;
        note: string;
        created_at: Date;
        known: boolean;
        first_name: string | null;
        last_name: string | null;
        username: string | null;
      }[]
    >`
      select a.telegram_id, a.note, a.created_at, u.telegram_id is not null as known,
             u.first_name, u.last_name, u.username
      from bot_admins a left join bot_users u on u.telegram_id = a.telegram_id
      order by a.created_at`;
    return rows.map((r) => ({
      telegramId: Number(r.telegram_id),
      note: r.note,
      createdAt: r.created_at,
      user: r.known ? { firstName: r.first_name, lastName: r.last_name, username: r.username } : null,
    }));
  }

  function reload(): Promise<Set<number>> {
    const read = async () => {
      ids = new Set((await list()).map((a) => a.telegramId));
      return ids;
    };
    const run = reloading.then(read, read);
    reloading = run.catch(() => {});
    return run;
  }

  async function isAdmin(telegramId: number): Promise<boolean> {
    return (ids ?? (await reload())).has(telegramId);
  }

  /**
   * Makes a Telegram user a bot admin. An existing admin stays as they are (their note too): false tells the
   * caller nothing was added.
   */
  async function add(telegramId: number, note = ""): Promise<boolean> {
    if (!Number.isSafeInteger(telegramId) || telegramId <= 0)
      throw invalid("Telegram ID — положительное число", "telegramId");
    if (note.length > 200) throw invalid("Заметка длиннее 200 символов", "note");
    const added = await sql`
      insert into bot_admins (telegram_id, note) values (${telegramId}, ${plainLine(note)})
      on conflict (telegram_id) do nothing
      returning telegram_id`;
    if (added.length === 0) return false;
    await changed();
    return true;
  }

  async function remove(telegramId: number): Promise<void> {
    const rows = await sql`delete from bot_admins where telegram_id = ${telegramId} returning telegram_id`;
    if (rows.length === 0) throw notFound(`${telegramId} не администратор`, "telegramId");
    await changed();
  }

  async function changed(): Promise<void> {
    await reload();
    await cache.publish(CHANNELS.admins, "changed");
  }

  return { list, isAdmin, add, remove, reload };
}

export type Admins = ReturnType<typeof createAdmins>;

/**
 * Messages to the shop's admins in Telegram about money or keys that need a person: a payment with no key left, a
 * payment received twice, a purchase that could not be delivered. Best effort: the same facts are in the panel and
 * in the log, so a Telegram outage loses a nudge, never the information.
 */
export async function alertAdmins(admins: Pick<Admins, "list">, messenger: Messenger, text: string): Promise<number> {
  const list = await admins.list();
  if (list.length === 0) {
    log.warn("no bot admins to alert; add one in the panel's Admins tab", { alert: text.split("\n")[0] });
    return 0;
  }
  let sent = 0;
  for (const admin of list) {
    try {
      await messenger.sendText(admin.telegramId, text);
      sent++;
    } catch (error) {
      log.warn("admin alert not delivered", { adminId: admin.telegramId, error: (error as Error).message });
    }
  }
  return sent;
}
