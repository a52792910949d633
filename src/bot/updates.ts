import type { TelegramUpdate } from "gramio";
import { log } from "../lib/log.ts";
import type { ShopBot } from "./bot.ts";
import { type UpdateOutcome, withOutcome } from "./outcome.ts";

/**
 * Answering Telegram's updates, however they arrive (long polling, polling.ts, or the webhook): one user's in order,
 * different users' side by side, an update cut short by a revoked token kept for the next one, and one the shop could
 * not do for now (its database away, see outcome.ts) kept to be handled again.
 */

/** Whether a value from Telegram (or from whoever calls the webhook) is an update at all. */
export function isUpdate(value: unknown): value is TelegramUpdate {
  return (
    typeof value === "object" && value !== null && Number.isSafeInteger((value as { update_id?: unknown }).update_id)
  );
}

/** Whose update it is, so one user's updates run in order while different users' run side by side. */
function updateOwner(update: TelegramUpdate): number {
  return (
    update.message?.from?.id ??
    update.callback_query?.from.id ??
    update.my_chat_member?.from.id ??
    update.pre_checkout_query?.from.id ??
    update.message?.chat.id ??
    0
  );
}

/** Handles one update; says whether it is done or must be handled again (see UpdateOutcome). */
export function handleUpdate(bot: ShopBot, update: TelegramUpdate): Promise<UpdateOutcome> {
  return withOutcome(
    () => bot.updates.handleUpdate(update),
    (error) => log.error("bot update failed", { updateId: update.update_id, error }),
  );
}

/** An update of a batch that is not done, and why. */
export type Unanswered = { updateId: number; outcome: Exclude<UpdateOutcome, "answered"> };

/**
 * A batch: each user's updates in order, different users concurrently. Resolves with the updates it did not
 * answer and why: an update that was not done holds back that user's later updates too (with the same reason),
 * keeping each user's order when they are handled again.
 */
export async function handleBatch(bot: ShopBot, updates: TelegramUpdate[]): Promise<Unanswered[]> {
  const byOwner = new Map<number, TelegramUpdate[]>();
  for (const u of updates) byOwner.set(updateOwner(u), [...(byOwner.get(updateOwner(u)) ?? []), u]);
  const unanswered: Unanswered[] = [];
  await Promise.all(
    [...byOwner.values()].map(async (list) => {
      for (const [i, u] of list.entries()) {
        const outcome = await handleUpdate(bot, u);
        if (outcome !== "answered") {
          unanswered.push(...list.slice(i).map((x) => ({ updateId: x.update_id, outcome })));
          return;
        }
      }
    }),
  );
  return unanswered;
}
