import { Composer } from "gramio";
import { STALE_BUTTON } from "../../shop/texts/buyers.ts";
import { answer, type BotDeps, placeOf, show } from "../screen.ts";
import { catalogueScreen } from "../views.ts";

/** The last word: any other private message opens the catalogue; any other button is stale and does the same. */
export function fallback(deps: BotDeps) {
  return new Composer({ name: "fallback" })
    .on("message", async (ctx) => {
      if (ctx.payload.chat.type !== "private") return;
      await show(ctx.bot.api, { chatId: ctx.payload.chat.id }, await catalogueScreen(deps, ctx.payload.chat.id));
    })
    .on("callback_query", async (ctx) => {
      await answer(ctx.bot.api, ctx.payload.id, STALE_BUTTON);
      await show(ctx.bot.api, placeOf(ctx.payload), await catalogueScreen(deps, ctx.payload.from.id));
    });
}
