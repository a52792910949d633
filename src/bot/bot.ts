import { Bot, TelegramError } from "gramio";
import { log } from "../lib/log.ts";
import { SOMETHING_WENT_WRONG } from "../shop/texts/buyers.ts";
import { adminFunctions } from "./features/admin.ts";
import { fallback } from "./features/fallback.ts";
import { gatekeeping } from "./features/gatekeeping.ts";
import { purchases } from "./features/purchases.ts";
import { renewal } from "./features/renewal.ts";
import { sharingAlerts } from "./features/sharing.ts";
import { starsInvoices, starsPayments } from "./features/stars.ts";
import { storefront } from "./features/storefront.ts";
import { botApiBase } from "./messenger.ts";
import { markTokenRejected } from "./outcome.ts";
import type { BotDeps } from "./screen.ts";

export type { BotDeps } from "./screen.ts";

/**
 * The shop's bot for one token: payments in Stars first (they are settled whatever the gate says), gatekeeping, then
 * one composer per feature, then the fallback. It only handles updates; receiving them (long polling or webhook) is
 * the runtime's job.
 */
export function createShopBot(token: string, telegramApiUrl: string, deps: BotDeps) {
  // "scoped": an extended composer is otherwise isolated and always passes the update on when it finishes, so the
  // gatekeeper could not stop anything and every message would also reach the fallback.
  return new Bot(token, { api: { baseURL: botApiBase(telegramApiUrl) } })
    .extend(starsPayments(deps).as("scoped"))
    .extend(gatekeeping(deps).as("scoped"))
    .extend(adminFunctions(deps).as("scoped"))
    .extend(sharingAlerts(deps).as("scoped"))
    .extend(storefront(deps).as("scoped"))
    .extend(starsInvoices(deps).as("scoped"))
    .extend(purchases(deps).as("scoped"))
    .extend(renewal(deps).as("scoped"))
    .extend(fallback(deps).as("scoped"))
    .onError(({ error, context }) => {
      if (error instanceof TelegramError && error.code === 401) {
        // The token was revoked under us: the runtime hands the update to the next token instead of counting it.
        markTokenRejected();
        log.warn("bot token rejected while answering an update", { updateId: context.updateId });
        return;
      }
      log.error("bot update failed", { updateId: context.updateId, error });
      // A pressed button must never spin forever: say something went wrong, and that trying again is fine.
      const query = context.update?.callback_query;
      if (query) {
        return context.bot.api
          .answerCallbackQuery({ callback_query_id: query.id, text: SOMETHING_WENT_WRONG })
          .then(() => undefined)
          .catch(() => undefined);
      }
    });
}

export type ShopBot = ReturnType<typeof createShopBot>;
