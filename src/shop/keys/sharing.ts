import { log } from "../../lib/log.ts";
import type { ShopDeps } from "../deps.ts";
import type { InlineButton } from "../messenger.ts";
import type { SettingsService } from "../settings/settings.ts";
import { adminName, type SharingAction, sharingAlertTexts } from "../texts/admins.ts";
import { moscowDateTime } from "../texts/buyers.ts";
import { type Actor, actor, recordKeyEvent } from "./events.ts";
import { banKey, clearHwid, type Keys } from "./keys.ts";

/**
 * Sharing alerts (docs/panel.md#sharing-alerts). After each write of HWID mismatches, the keys it touched are looked
 * at: one that met `sharing_alert_uuids` distinct foreign PCs within the last `sharing_alert_hours` hours (not banned;
 * its own PC not counted) gets an alert, unless it had one within those hours — decided under an advisory lock on
 * the key, so processes writing mismatches of one key at once raise one alert between them. The alert has a copy per
 * admin (sharing_alert_copies): an outbox the alerts job sends, and edits whenever the alert changes (version), so
 * every admin's message ends up saying who did what. The first admin to press a button decides, in one transaction
 * with the ban or the HWID reset it means.
 */

export type { SharingAction } from "../texts/admins.ts";

export const SHARING_ACTIONS: readonly SharingAction[] = ["ban", "reset", "ignore"];

/** Callback data of an alert's buttons (Telegram allows 64 bytes); the bot matches SHARING_ALERT_PATTERN. */
export const sharingAlertData = (action: SharingAction, alertId: number) => `sa:${action}:${alertId}`;
export const SHARING_ALERT_PATTERN = /^sa:(ban|reset|ignore):(\d{1,15})$/;

/** The first key of the raise's advisory lock, apart from every other use of two-key advisory locks. */
const SHARING_ALERT_LOCK = 0x53484152; // "SHAR"

/** One admin's copy of an alert to send or edit, with what it must say now. */
export type AlertCopyWork = {
  alertId: number;
  chatId: number;
  /** Telegram's message, once sent: later versions edit it. */
  messageId: number | null;
  version: number;
  attempts: number;
  text: string;
  /** The buttons while the alert is undecided; none after. */
  buttons: InlineButton[][] | undefined;
};

/** What pressing a button did, for the notice the admin gets at once. */
export type Resolution =
  | { outcome: "done"; action: SharingAction }
  | { outcome: "already"; action: SharingAction; by: string }
  | { outcome: "gone" };

type CopyRow = {
  alert_id: string;
  chat_id: string;
  message_id: string | null;
  attempts: number;
  version: number;
  uuids: number;
  mismatches: string;
  hours: number;
  resolution: SharingAction | null;
  resolved_by: string | null;
  resolved_at: Date | null;
  key_id: string;
  key: string;
  hwid: string | null;
  days: number;
  gift: boolean;
  buyer_id: string | null;
  buyer_username: string | null;
  product_name: string;
  resolver_first_name: string | null;
  resolver_username: string | null;
};

/** An admin who decided, as the other admins know them; a panel account or the CLI by what it is. */
function resolverName(by: string | null, user: { first_name: string | null; username: string | null }): string {
  const telegram = /^bot:(\d{1,18})$/.exec(by ?? "");
  if (telegram) return adminName({ id: Number(telegram[1]), firstName: user.first_name, username: user.username });
  if (by?.startsWith("panel:")) return `${by.slice("panel:".length)} (панель)`;
  return "администратор";
}

export function createSharingAlerts(
  deps: ShopDeps,
  parts: { keys: Pick<Keys, "announce">; settings: Pick<SettingsService, "get"> },
) {
  const { sql, config } = deps;
  const listeners = new Set<() => void>();
  const keyPage = (keyId: number) => `${config.publicUrl}${encodeURI(config.basePath)}/keys/${keyId}`;

  /** Tells this process's alerts job that copies are due (raised or decided here); other processes poll. */
  function changed(): void {
    for (const listener of listeners) listener();
  }

  function onChanged(listener: () => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /** Raises the alerts these keys call for now; returns how many were raised (by this process). */
  async function check(keyIds: number[]): Promise<number> {
    if (keyIds.length === 0) return 0;
    const { sharingAlertUuids: uuids, sharingAlertHours: hours } = await parts.settings.get();
    const hits = await sql<{ key_id: string; uuids: number; mismatches: string }[]>`
      select m.key_id, count(*)::int as uuids, sum(m.count) as mismatches
      from key_mismatches m join keys k on k.id = m.key_id
      where m.key_id = any(${keyIds}::bigint[])
        and m.last_at > now() - make_interval(hours => ${hours})
        and m.uuid is distinct from k.hwid and k.banned_at is null
      group by m.key_id
      having count(*) >= ${uuids}`;
    let raised = 0;
    for (const hit of hits) {
      if (await raise(Number(hit.key_id), hit.uuids, Number(hit.mismatches), hours)) raised++;
    }
    if (raised > 0) changed();
    return raised;
  }

  /** One alert per key per `hours`, whichever process gets here first; null when the key had one already. */
  async function raise(keyId: number, uuids: number, mismatches: number, hours: number): Promise<number | null> {
    return await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${SHARING_ALERT_LOCK}, (${keyId}::bigint % 2147483647)::int)`;
      const [recent] = await tx`
        select 1 from sharing_alerts where key_id = ${keyId} and raised_at > now() - make_interval(hours => ${hours})
        limit 1`;
      if (recent) return null;
      const [alert] = await tx<{ id: string }[]>`
        insert into sharing_alerts (key_id, uuids, mismatches, hours)
        values (${keyId}, ${uuids}, ${mismatches}, ${hours})
        returning id`;
      const id = Number(alert!.id);
      const copies = await tx`
        insert into sharing_alert_copies (alert_id, chat_id) select ${id}, telegram_id from bot_admins returning 1`;
      log.info("sharing alert raised", { alertId: id, keyId, uuids, mismatches, hours, admins: copies.length });
      if (copies.length === 0) log.warn("sharing alert raised, but there is no bot admin to tell", { alertId: id });
      return id;
    });
  }

  /**
   * Claims up to `limit` copies to send or edit. A claim is a lease: the copy's next attempt moves `leaseMs` ahead,
   * so a process that dies mid-send leaves it to another, and SKIP LOCKED keeps two jobs off the same copy.
   */
  async function claimCopies(limit: number, leaseMs: number): Promise<AlertCopyWork[]> {
    const rows = await sql<CopyRow[]>`
      with due as (
        select alert_id, chat_id from sharing_alert_copies
        where due and next_attempt_at <= now()
        order by next_attempt_at
        limit ${limit}
        for update skip locked
      ), claimed as (
        update sharing_alert_copies c
        set attempts = c.attempts + 1, next_attempt_at = now() + make_interval(secs => ${leaseMs / 1000})
        from due where c.alert_id = due.alert_id and c.chat_id = due.chat_id
        returning c.alert_id, c.chat_id, c.message_id, c.attempts
      )
      select c.*, a.version, a.uuids, a.mismatches, a.hours, a.resolution, a.resolved_by, a.resolved_at,
        k.id as key_id, k.key, k.hwid, k.days, k.gift, k.buyer_id, b.username as buyer_username,
        p.name as product_name, r.first_name as resolver_first_name, r.username as resolver_username
      from claimed c
      join sharing_alerts a on a.id = c.alert_id
      join keys k on k.id = a.key_id
      join products p on p.id = k.product_id
      left join bot_users b on b.telegram_id = k.buyer_id
      left join bot_users r
        on r.telegram_id = case when a.resolved_by ~ '^bot:[0-9]{1,18}$' then split_part(a.resolved_by, ':', 2)::bigint end`;
    return rows.map((r) => {
      const alertId = Number(r.alert_id);
      const facts = {
        key: r.key,
        productName: r.product_name,
        days: r.days,
        buyer: r.buyer_id === null ? null : { id: Number(r.buyer_id), username: r.buyer_username },
        gift: r.gift,
        hwid: r.hwid,
        uuids: r.uuids,
        mismatches: Number(r.mismatches),
        hours: r.hours,
        url: keyPage(Number(r.key_id)),
      };
      const decided = r.resolution !== null && r.resolved_at !== null;
      return {
        alertId,
        chatId: Number(r.chat_id),
        messageId: r.message_id === null ? null : Number(r.message_id),
        version: r.version,
        attempts: r.attempts,
        text: decided
          ? sharingAlertTexts.resolved(
              facts,
              r.resolution!,
              resolverName(r.resolved_by, { first_name: r.resolver_first_name, username: r.resolver_username }),
              moscowDateTime(r.resolved_at!),
            )
          : sharingAlertTexts.alert(facts),
        buttons: decided
          ? undefined
          : [
              SHARING_ACTIONS.map((action) => ({
                text: sharingAlertTexts.buttons[action],
                callbackData: sharingAlertData(action, alertId),
              })),
            ],
      };
    });
  }

  /** The copy now shows `work.version`; it is due again only if the alert has moved on meanwhile. */
  async function copyShown(work: AlertCopyWork, messageId: number | null): Promise<void> {
    await sql`
      update sharing_alert_copies c set
        message_id = coalesce(${messageId}, c.message_id),
        shown_version = ${work.version},
        due = (select a.version from sharing_alerts a where a.id = c.alert_id) <> ${work.version},
        attempts = 0, last_error = null, next_attempt_at = now()
      where alert_id = ${work.alertId} and chat_id = ${work.chatId}`;
  }

  /** Tries the copy again in `ms`; a wait that is not the copy's fault (rate limit, no token) is not an attempt. */
  async function retryCopy(work: AlertCopyWork, ms: number, error: string, countAttempt: boolean): Promise<void> {
    await sql`
      update sharing_alert_copies set
        next_attempt_at = now() + make_interval(secs => ${ms / 1000}),
        last_error = ${error.slice(0, 500)},
        attempts = attempts - ${countAttempt ? 0 : 1}
      where alert_id = ${work.alertId} and chat_id = ${work.chatId}`;
  }

  /** Stops trying this copy (the admin blocked the bot, the message is gone) until the alert changes again. */
  async function dropCopy(work: AlertCopyWork, error: string): Promise<void> {
    await sql`
      update sharing_alert_copies set due = false, last_error = ${error.slice(0, 500)}
      where alert_id = ${work.alertId} and chat_id = ${work.chatId}`;
  }

  /**
   * An admin pressed a button: the first press decides, together with the ban or HWID reset it means (and the
   * key's timeline line); every process obeys at once, and every admin's copy is edited to say who did what.
   */
  async function resolve(alertId: number, action: SharingAction, adminTelegramId: number): Promise<Resolution> {
    const by: Actor = actor.adminInBot(adminTelegramId);
    const result = await sql.begin(async (tx): Promise<Resolution & { key?: string }> => {
      const [alert] = await tx<{ key_id: string; key: string }[]>`
        update sharing_alerts a set resolution = ${action}, resolved_by = ${by}, resolved_at = now(),
          version = a.version + 1
        from keys k
        where a.id = ${alertId} and a.resolution is null and k.id = a.key_id
        returning a.key_id, k.key`;
      if (!alert) {
        const [earlier] = await tx<
          {
            resolution: SharingAction | null;
            resolved_by: string | null;
            first_name: string | null;
            username: string | null;
          }[]
        >`
          select a.resolution, a.resolved_by, u.first_name, u.username
          from sharing_alerts a
          left join bot_users u
            on u.telegram_id = case when a.resolved_by ~ '^bot:[0-9]{1,18}$' then split_part(a.resolved_by, ':', 2)::bigint end
          where a.id = ${alertId}`;
        if (!earlier?.resolution) return { outcome: "gone" };
        return { outcome: "already", action: earlier.resolution, by: resolverName(earlier.resolved_by, earlier) };
      }
      const keyId = Number(alert.key_id);
      if (action === "ban") await banKey(tx, keyId, by, { alertId });
      else if (action === "reset") await clearHwid(tx, keyId, by, { alertId });
      else await recordKeyEvent(tx, keyId, "alert_ignored", by, { alertId });
      await tx`update sharing_alert_copies set due = true, next_attempt_at = now() where alert_id = ${alertId}`;
      return { outcome: "done", action, key: alert.key };
    });
    if (result.outcome !== "done") return result;
    if (action !== "ignore" && result.key) await parts.keys.announce([result.key]);
    log.info("sharing alert decided", { alertId, action, by });
    changed();
    return { outcome: "done", action };
  }

  return { check, claimCopies, copyShown, retryCopy, dropCopy, resolve, onChanged };
}

export type SharingAlerts = ReturnType<typeof createSharingAlerts>;
