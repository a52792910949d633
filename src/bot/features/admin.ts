import { Composer } from "gramio";
import { log } from "../../lib/log.ts";
import { broadcastTextProblem } from "../../shop/broadcasts/broadcasts.ts";
import { ShopError } from "../../shop/errors.ts";
import { broadcastDraftKeyboard, pattern } from "../keyboards.ts";
import { answer, type BotDeps, placeOf, show } from "../screen.ts";
import {
  ADMIN_ONLY,
  BROADCAST_CANCELLED,
  BROADCAST_DRAFT_GONE,
  BROADCAST_PROMPT,
  broadcastPreviewHeader,
  broadcastStarted,
  maintenanceToggled,
} from "../texts.ts";
import { catalogueScreen } from "../views.ts";

const AWAIT_TTL_MS = 10 * 60_000;
const DRAFT_TTL_MS = 60 * 60_000;

const awaitKey = (adminId: number) => `bot:await-broadcast:${adminId}`;
const draftKey = (adminId: number) => `bot:broadcast-draft:${adminId}`;

type Draft = { id: string; text: string };

function parseDraft(text: string | null): Draft | null {
  if (!text) return null;
  try {
    const value = JSON.parse(text) as Partial<Draft>;
    return typeof value.id === "string" && typeof value.text === "string" ? { id: value.id, text: value.text } : null;
  } catch {
    return null;
  }
}

/**
 * What admins can do from the bot: a broadcast (text → preview → confirm) and maintenance on/off. Every handler
 * checks the admin list itself: a forged button from anyone else gets a refusal.
 */
export function adminFunctions(deps: BotDeps) {
  const { shop } = deps;
  const { cache } = shop.deps;

  return new Composer({ name: "admin" })
    .callbackQuery(pattern.broadcast, async (ctx) => {
      const api = ctx.bot.api;
      const adminId = ctx.payload.from.id;
      if (!(await shop.admins.isAdmin(adminId))) return answer(api, ctx.payload.id, ADMIN_ONLY, { alert: true });
      await cache.set(awaitKey(adminId), "1", AWAIT_TTL_MS);
      await answer(api, ctx.payload.id);
      await api.sendMessage({ chat_id: adminId, text: BROADCAST_PROMPT });
    })
    .on("message", async (ctx, next) => {
      const from = ctx.payload.from;
      if (!from || ctx.payload.chat.type !== "private") return next();
      if (!(await cache.get(awaitKey(from.id))) || !(await shop.admins.isAdmin(from.id))) return next();
      const api = ctx.bot.api;
      const text = ctx.payload.text;
      if (text === "/cancel") {
        await cache.del(awaitKey(from.id));
        await api.sendMessage({ chat_id: from.id, text: BROADCAST_CANCELLED });
        return;
      }
      // Another command means the admin moved on: leave the prompt and let the command do its job.
      if (text?.startsWith("/")) {
        await cache.del(awaitKey(from.id));
        return next();
      }
      const problem =
        text === undefined
          ? "Нужен текст: рассылка отправляет только текстовые сообщения."
          : broadcastTextProblem(text);
      if (problem || text === undefined) {
        await api.sendMessage({ chat_id: from.id, text: problem ?? BROADCAST_PROMPT });
        return;
      }
      const draft: Draft = { id: crypto.randomUUID().slice(0, 12), text: text.trim() };
      await cache.set(draftKey(from.id), JSON.stringify(draft), DRAFT_TTL_MS);
      await cache.del(awaitKey(from.id));
      const audience = await shop.broadcasts.audience();
      await api.sendMessage({ chat_id: from.id, text: broadcastPreviewHeader(audience) });
      await api.sendMessage({ chat_id: from.id, text: draft.text, reply_markup: broadcastDraftKeyboard(draft.id) });
    })
    .callbackQuery(pattern.broadcastDraft, async (ctx) => {
      const api = ctx.bot.api;
      const adminId = ctx.payload.from.id;
      if (!(await shop.admins.isAdmin(adminId))) return answer(api, ctx.payload.id, ADMIN_ONLY, { alert: true });
      const [, action, id] = ctx.queryData;
      const draft = parseDraft(await cache.get(draftKey(adminId)));
      // The draft is used once: a second press (or a double tap) finds it gone instead of sending twice.
      const mine =
        draft?.id === id && (await cache.setIfAbsent(`bot:broadcast-draft-used:${id}`, "1", DRAFT_TTL_MS)) !== false;
      const place = placeOf(ctx.payload);
      const removeButtons = () =>
        place.messageId === undefined
          ? Promise.resolve()
          : api
              .editMessageReplyMarkup({ chat_id: place.chatId, message_id: place.messageId })
              .then(() => undefined)
              .catch(() => undefined);
      if (!draft || !mine) {
        await answer(api, ctx.payload.id, BROADCAST_DRAFT_GONE, { alert: true });
        await removeButtons();
        return;
      }
      await cache.del(draftKey(adminId));
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
