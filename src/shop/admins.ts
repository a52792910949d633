import { plainLine } from "../lib/text.ts";
import { CHANNELS, type ShopDeps } from "./deps.ts";
import { invalid, notFound } from "./errors.ts";

export type BotAdmin = { telegramId: number; note: string; createdAt: Date };

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
    const rows = await sql<{ telegram_id: string; note: string; created_at: Date }[]>`
      select * from bot_admins order by created_at`;
    return rows.map((r) => ({ telegramId: Number(r.telegram_id), note: r.note, createdAt: r.created_at }));
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

  async function add(telegramId: number, note = ""): Promise<void> {
    if (!Number.isSafeInteger(telegramId) || telegramId <= 0)
      throw invalid("Telegram ID — положительное число", "telegramId");
    if (note.length > 200) throw invalid("Заметка длиннее 200 символов", "note");
    await sql`
      insert into bot_admins (telegram_id, note) values (${telegramId}, ${plainLine(note)})
      on conflict (telegram_id) do update set note = excluded.note`;
    await changed();
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
