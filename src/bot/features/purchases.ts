import { Composer } from "gramio";
import { MY_PURCHASES, NO_PURCHASES, purchasesText } from "../../shop/texts/buyers.ts";
import { purchaseState } from "../../shop/users/purchases.ts";
import { backToCatalogue, pattern } from "../keyboards.ts";
import { answer, type BotDeps, type Place, placeOf, type Screen, show } from "../screen.ts";

/**
 * «Мои покупки»: the keys this user owns and what state each is in, and paid orders still waiting for a key — the
 * first thing a buyer looks for after paying.
 */
export function purchases(deps: BotDeps) {
  async function screen(userId: number): Promise<Screen> {
    const { items, total } = await deps.shop.purchases.of(userId);
    const now = new Date();
    return {
      text:
        items.length === 0
          ? NO_PURCHASES
          : purchasesText(
              items.map((p) => ({ purchase: p, state: p.kind === "key" ? purchaseState(p, now) : null })),
              total,
            ),
      keyboard: backToCatalogue(),
    };
  }

  const showTo = async (api: Parameters<typeof show>[0], place: Place, userId: number) =>
    show(api, place, await screen(userId));

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
    });
}
