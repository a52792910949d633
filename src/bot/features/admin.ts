import { Composer } from "gramio";
import { log } from "../../lib/log.ts";
import { broadcastTextProblem } from "../../shop/broadcasts/broadcasts.ts";
import { ShopError } from "../../shop/errors.ts";
import {
  ADMIN_ONLY,
  BROADCAST_CANCELLED,
  BROADCAST_DRAFT_GONE,
  BROADCAST_PROMPT,
  BROADCAST_TEXT_ONLY,
  broadcastPreviewHeader,
  broadcastStarted,
  maintenanceToggled,
} from "../../shop/texts/admins.ts";
import { broadcastDraftKeyboard, pattern } from "../keyboards.ts";
import { answer, type BotDeps, placeOf, show } from "../screen.ts";
import { catalogueScreen } from "../views.ts";

/**
 * What admins can do from the bot: a broadcast (text → preview → confirm) and maintenance on/off. Every handler
 * checks the admin list itself: a forged button from anyone else gets a refusal.
 */
export function adminFunctions(deps: BotDeps) {
  const { shop } = deps;
  const { drafts } = shop.broadcasts;

  return new Composer({ name: "admin" })
    .callbackQuery(pattern.broadcast, async (ctx) => {
      const api = ctx.bot.api;
      const adminId = ctx.payload.from.id;
      if (!(await shop.admins.isAdmin(adminId))) return answer(api, ctx.payload.id, ADMIN_ONLY, { alert: true });
      await drafts.awaitText(adminId);
      await answer(api, ctx.payload.id);
      await api.sendMessage({ chat_id: adminId, text: BROADCAST_PROMPT });
    })
    .on("message", async (ctx, next) => {
      const from = ctx.payload.from;
      if (!from || ctx.payload.chat.type !== "private") return next();
      if (!(await drafts.awaitingText(from.id)) || !(await shop.admins.isAdmin(from.id))) return next();
      const api = ctx.bot.api;
      const text = ctx.payload.text;
      if (text === "/cancel") {
        await drafts.stopAwaiting(from.id);
        await api.sendMessage({ chat_id: from.id, text: BROADCAST_CANCELLED });
        return;
      }
      // Another command means the admin moved on: leave the prompt and let the command do its job.
      if (text?.startsWith("/")) {
        await drafts.stopAwaiting(from.id);
        return next();
      }
      const problem = text === undefined ? BROADCAST_TEXT_ONLY : broadcastTextProblem(text);
      if (problem || text === undefined) {
        await api.sendMessage({ chat_id: from.id, text: problem ?? BROADCAST_PROMPT });
        return;
      }
      const draft = await drafts.save(from.id, text.trim());
      const audience = await shop.broadcasts.audience();
      await api.sendMessage({ chat_id: from.id, text: broadcastPreviewHeader(audience) });
      await api.sendMessage({ chat_id: from.id, text: draft.text, reply_markup: broadcastDraftKeyboard(draft.id) });
    })
    .callbackQuery(pattern.broadcastDraft, async (ctx) => {
      const api = ctx.bot.api;
      const adminId = ctx.payload.from.id;
      if (!(await shop.admins.isAdmin(adminId))) return answer(api, ctx.payload.id, ADMIN_ONLY, { alert: true });
      const [, action, id] = ctx.queryData;
      // The draft is used once: a second press (or a double tap) finds it gone instead of sending twice.
      const draft = await drafts.take(adminId, id!);
      const place = placeOf(ctx.payload);
      const removeButtons = () =>
        place.messageId === undefined
          ? Promise.resolve()
          : api
              .editMessageReplyMarkup({ chat_id: place.chatId, message_id: place.messageId })
              .then(() => undefined)
              .catch(() => undefined);
      if (!draft) {
        await answer(api, ctx.payload.id, BROADCAST_DRAFT_GONE, { alert: true });
        await removeButtons();
        return;
      }
      if (action === "no") {
        await answer(api, ctx.payload.id, BROADCAST_CANCELLED);
        await removeButtons();
        return;
      }
      try {
        const broadcast = await shop.broadcasts.create({ text: draft.text, createdBy: `telegram:${adminId}` });
        await answer(api, ctx.payload.id);
        await removeButtons();
        await api.sendMessage({ chat_id: adminId, text: broadcastStarted(broadcast.id, broadcast.progress.total) });
      } catch (error) {
        if (!(error instanceof ShopError)) throw error;
        await answer(api, ctx.payload.id, error.message, { alert: true });
      }
    })
    .callbackQuery(pattern.maintenance, async (ctx) => {
      const api = ctx.bot.api;
      const adminId = ctx.payload.from.id;
      if (!(await shop.admins.isAdmin(adminId))) return answer(api, ctx.payload.id, ADMIN_ONLY, { alert: true });
      const on = ctx.queryData[1] === "1";
      await shop.settings.update({ maintenance: on });
      log.info("maintenance switched from the bot", { on, adminId });
      await answer(api, ctx.payload.id, maintenanceToggled(on));
      await show(api, placeOf(ctx.payload), await catalogueScreen(deps, adminId));
    });
}
