import { Composer, type TelegramCallbackQuery } from "gramio";
import { nextBuyerReset } from "../../shop/keys/self-service.ts";
import {
  KEY_BANNED,
  KEY_NOT_ACTIVATED,
  MY_PURCHASES,
  RESET_NOT_BOUND,
  RESET_OFF,
  resetConfirmText,
  resetCooldownText,
  resetDoneText,
} from "../../shop/texts/buyers.ts";
import { backToPurchases, pattern, resetConfirmKeyboard } from "../keyboards.ts";
import { answer, type BotApi, type BotDeps, type Place, placeOf, show } from "../screen.ts";
import { purchasesScreen, stalePurchase } from "../views.ts";

/**
 * «Мои покупки»: the keys this user owns and what state each is in, and paid orders still waiting for a key — the
 * first thing a buyer looks for after paying — a few per page, each key with «Продлить» (features/renewal.ts) and
 * «Сбросить привязку» (here: the buyer moves the key to a new PC). Every press names a key by id and is checked
 * against what this user owns: a stale or forged one gets a notice and the fresh list, and changes nothing.
 */
export function purchases(deps: BotDeps) {
  const { shop } = deps;

  const showTo = async (api: BotApi, place: Place, userId: number, page = 1) =>
    show(api, place, await purchasesScreen(deps, userId, page));

  const stale = (api: BotApi, query: TelegramCallbackQuery, notice?: string) => stalePurchase(deps, api, query, notice);

  return new Composer({ name: "purchases" })
    .command("purchases", async (ctx) => {
      await showTo(ctx.bot.api, { chatId: ctx.payload.chat.id }, ctx.payload.chat.id);
    })
    .hears(MY_PURCHASES, async (ctx) => {
      await showTo(ctx.bot.api, { chatId: ctx.payload.chat.id }, ctx.payload.chat.id);
    })
    .callbackQuery(pattern.purchases, async (ctx) => {
      await answer(ctx.bot.api, ctx.payload.id);
      await showTo(ctx.bot.api, placeOf(ctx.payload), ctx.payload.from.id);
    })
    .callbackQuery(pattern.purchasesPage, async (ctx) => {
      await answer(ctx.bot.api, ctx.payload.id);
      const page = Math.max(1, Number(ctx.queryData[1]));
      await showTo(ctx.bot.api, placeOf(ctx.payload), ctx.payload.from.id, page);
    })
    .callbackQuery(pattern.reset, async (ctx) => {
      const api = ctx.bot.api;
      const userId = ctx.payload.from.id;
      const key = await shop.buyerKeys.owned(userId, Number(ctx.queryData[1]));
      if (!key) return stale(api, ctx.payload);
      const settings = await shop.settings.get();
      if (settings.hwidResetCooldownDays === 0) return stale(api, ctx.payload, RESET_OFF);
      if (key.bannedAt) return stale(api, ctx.payload, KEY_BANNED);
      if (!key.expiresAt) return stale(api, ctx.payload, KEY_NOT_ACTIVATED);
      const wait = nextBuyerReset(key, settings.hwidResetCooldownDays);
      if (wait) return stale(api, ctx.payload, resetCooldownText(wait, settings.hwidResetCooldownDays));
      // Bound to no PC (an admin reset it): a confirmation would end in «nothing to reset», so say it now.
      if (key.hwid === null) return stale(api, ctx.payload, RESET_NOT_BOUND);
      await answer(api, ctx.payload.id);
      await show(api, placeOf(ctx.payload), {
        text: resetConfirmText(key, settings.hwidResetCooldownDays),
        keyboard: resetConfirmKeyboard(key.id),
      });
    })
    .callbackQuery(pattern.resetConfirm, async (ctx) => {
      const api = ctx.bot.api;
      const userId = ctx.payload.from.id;
      const result = await shop.buyerKeys.resetHwid(userId, Number(ctx.queryData[1]));
      switch (result.kind) {
        case "reset":
          await answer(api, ctx.payload.id);
          await show(api, placeOf(ctx.payload), {
            text: resetDoneText(result.key, result.nextAt),
            keyboard: backToPurchases(),
          });
          return;
        case "cooldown": {
          const { hwidResetCooldownDays } = await shop.settings.get();
          return stale(api, ctx.payload, resetCooldownText(result.nextAt, hwidResetCooldownDays));
        }
        case "off":
          return stale(api, ctx.payload, RESET_OFF);
        case "not_bound":
          return stale(api, ctx.payload, RESET_NOT_BOUND);
        case "not_activated":
          return stale(api, ctx.payload, KEY_NOT_ACTIVATED);
        case "banned":
          return stale(api, ctx.payload, KEY_BANNED);
        case "not_yours":
          return stale(api, ctx.payload);
      }
    });
}
