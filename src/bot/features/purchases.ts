import { Composer, type TelegramCallbackQuery } from "gramio";
import { canBuyerReset, nextBuyerReset } from "../../shop/keys/self-service.ts";
import {
  KEY_BANNED,
  KEY_NOT_ACTIVATED,
  MY_PURCHASES,
  NO_PURCHASES,
  PURCHASES_PER_PAGE,
  purchasesText,
  RESET_NOT_BOUND,
  RESET_OFF,
  resetConfirmText,
  resetCooldownText,
  resetDoneText,
  STALE_BUTTON,
} from "../../shop/texts/buyers.ts";
import { purchaseState } from "../../shop/users/purchases.ts";
import { backToPurchases, pattern, purchasesKeyboard, resetConfirmKeyboard } from "../keyboards.ts";
import { answer, type BotApi, type BotDeps, type Place, placeOf, type Screen, show } from "../screen.ts";

/**
 * «Мои покупки»: the keys this user owns and what state each is in, and paid orders still waiting for a key — the
 * first thing a buyer looks for after paying — a few per page, each key with «Продлить» (features/renewal.ts) and
 * «Сбросить привязку» (here: the buyer moves the key to a new PC). Every press names a key by id and is checked
 * against what this user owns: a stale or forged one gets a notice and the fresh list, and changes nothing.
 */
export function purchases(deps: BotDeps) {
  const { shop } = deps;

  async function screen(userId: number, page: number): Promise<Screen> {
    const perPage = PURCHASES_PER_PAGE;
    let { items, total } = await shop.purchases.of(userId, { offset: (page - 1) * perPage, limit: perPage });
    const pages = Math.max(1, Math.ceil(total / perPage));
    if (items.length === 0 && total > 0) {
      // An old «Старше ›» after purchases went away: the last page there is.
      page = pages;
      ({ items, total } = await shop.purchases.of(userId, { offset: (page - 1) * perPage, limit: perPage }));
    }
    if (total === 0) return { text: NO_PURCHASES, keyboard: purchasesKeyboard([], { page: 1, pages: 1 }) };
    const settings = await shop.settings.get();
    const now = new Date();
    const first = (page - 1) * perPage + 1;
    const shown = items.map((p) => ({ purchase: p, state: p.kind === "key" ? purchaseState(p, now) : null }));
    const keys = items.flatMap((p, i) =>
      p.kind === "key"
        ? [{ n: first + i, keyId: p.keyId, renew: p.bannedAt === null, reset: canBuyerReset(p, settings) }]
        : [],
    );
    return {
      text: purchasesText(shown, { first, page, pages }),
      keyboard: purchasesKeyboard(keys, { page, pages }),
    };
  }

  const showTo = async (api: BotApi, place: Place, userId: number, page = 1) =>
    show(api, place, await screen(userId, page));

  /** A press about a key that is not (or no longer) one this buyer can act on: a notice and the fresh list. */
  async function stale(api: BotApi, query: TelegramCallbackQuery, notice = STALE_BUTTON): Promise<void> {
    await answer(api, query.id, notice, { alert: notice !== STALE_BUTTON });
    await showTo(api, placeOf(query), query.from.id);
  }

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
