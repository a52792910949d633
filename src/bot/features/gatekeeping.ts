import { Composer, type TelegramUpdate, type TelegramUser } from "gramio";
import { log } from "../../lib/log.ts";
import { BOT_OFF, MAINTENANCE, TOO_MANY_REQUESTS } from "../../shop/texts/buyers.ts";
import { pressedEvent } from "../keyboards.ts";
import { answer, type BotDeps } from "../screen.ts";

/** The person behind an update the bot serves (private messages and button presses), or null for anything else. */
export function sender(update: TelegramUpdate | undefined): {
  user: TelegramUser;
  event: { kind: string; detail: Record<string, unknown> };
  callbackQueryId: string | null;
  chatId: number;
} | null {
  const q = update?.callback_query;
  if (q) {
    return {
      user: q.from,
      event: pressedEvent(q.data ?? ""),
      callbackQueryId: q.id,
      chatId: q.from.id,
    };
  }
  const m = update?.message;
  // The shop is a private conversation; groups and channels the bot is added to are ignored.
  if (!m?.from || m.chat.type !== "private") return null;
  return {
    user: m.from,
    event: { kind: "message", detail: { text: m.text === undefined ? null : m.text.slice(0, 200) } },
    callbackQueryId: null,
    chatId: m.chat.id,
  };
}

const profileOf = (user: TelegramUser) => ({
  id: user.id,
  username: user.username,
  firstName: user.first_name,
  lastName: user.last_name,
  languageCode: user.language_code,
});

/**
 * Runs before every feature: keeps out floods (per-user limit in the cache), records the user and what they did,
 * and closes the shop to non-admins while the bot is switched off or under maintenance. Admins always pass.
 */
export function gatekeeping(deps: BotDeps) {
  const { shop } = deps;
  const perMinute = deps.updatesPerMinute ?? 30;

  return new Composer({ name: "gatekeeping" }).use(async (ctx, next) => {
    const member = ctx.update?.my_chat_member;
    if (member && member.chat.type === "private") {
      // The user blocked (or unblocked) the bot: broadcasts skip them until they come back.
      if (member.new_chat_member.status === "kicked") await shop.users.markBlocked(member.from.id);
      else if (member.new_chat_member.status === "member") await shop.users.touch(profileOf(member.from));
      return;
    }
    const who = sender(ctx.update);
    if (!who || who.user.is_bot) return;
    const api = ctx.bot.api;
    const admin = await shop.admins.isAdmin(who.user.id);
    if (!admin) {
      const { allowed } = await shop.limits.botUpdate(who.user.id, perMinute);
      if (!allowed) {
        // A flood is neither recorded nor answered with messages: only a pressed button gets its spinner stopped.
        if (who.callbackQueryId) await answer(api, who.callbackQueryId, TOO_MANY_REQUESTS);
        log.debug("bot user rate limited", { userId: who.user.id });
        return;
      }
    }
    await shop.users.touch(profileOf(who.user));
    await shop.users.logEvent(who.user.id, who.event.kind, who.event.detail);

    const settings = await shop.settings.get();
    const closed = !settings.botEnabled ? BOT_OFF : settings.maintenance ? MAINTENANCE : null;
    if (closed && !admin) {
      if (who.callbackQueryId) await answer(api, who.callbackQueryId, closed, { alert: true });
      else await api.sendMessage({ chat_id: who.chatId, text: closed });
      return;
    }
    return next();
  });
}
