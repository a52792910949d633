import type { TelegramUpdate } from "gramio";
import { log } from "../lib/log.ts";
import { type ShopBot, updateOutcome } from "./bot.ts";

/**
 * Answering Telegram's updates, however they arrive (long polling, polling.ts, or the webhook): one user's in order,
 * different users' side by side, and an update cut short by a revoked token kept for the next one.
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

/** Handles one update; false when the token was revoked mid-way and the update must go to the next token. */
export async function handleUpdate(bot: ShopBot, update: TelegramUpdate): Promise<boolean> {
  const outcome = { tokenRejected: false };
  try {
    await updateOutcome.run(outcome, () => bot.updates.handleUpdate(update));
  } catch (error) {
    log.error("bot update failed", { updateId: update.update_id, error });
  }
  return !outcome.tokenRejected;
}

/**
 * A batch: each user's updates in order, different users concurrently. Resolves with the ids it could not
 * answer because the token was revoked (each user's later updates wait for the next token too, keeping order).
 */
export async function handleBatch(bot: ShopBot, updates: TelegramUpdate[]): Promise<number[]> {
  const byOwner = new Map<number, TelegramUpdate[]>();
  for (const u of updates) byOwner.set(updateOwner(u), [...(byOwner.get(updateOwner(u)) ?? []), u]);
  const unanswered: number[] = [];
  await Promise.all(
    [...byOwner.values()].map(async (list) => {
      for (const [i, u] of list.entries()) {
        if (!(await handleUpdate(bot, u))) {
          unanswered.push(...list.slice(i).map((x) => x.update_id));
          return;
        }
      }
    }),
  );
  return unanswered;
}
