import { AsyncLocalStorage } from "node:async_hooks";

/**
 * How the handling of one update ended, as whoever received it (the poller, the webhook) must know it:
 * - "answered": done (even if it failed: a bug is logged, and repeating the update would only fail again);
 * - "tokenRejected": Telegram refused the token in the middle of it (revoked under us): the update goes to the next
 *   token;
 * - "retryLater": the shop could not do it for now (its database is away) and dropping it would lose something that
 *   cannot be asked for again (Stars already taken): Telegram must deliver it again.
 */
export type UpdateOutcome = "answered" | "tokenRejected" | "retryLater";

/**
 * Set while one update is handled, so that a feature deep inside it can say the update is not done. Its own module
 * (not bot.ts) because bot.ts imports the features that set it.
 */
const current = new AsyncLocalStorage<{ outcome: UpdateOutcome }>();

/**
 * Handles one update with a fresh outcome and resolves with it. An error thrown by the handling goes to `failed`
 * (logged there) and leaves the outcome as the handling had set it so far.
 */
export async function withOutcome(
  handle: () => Promise<unknown>,
  failed: (error: unknown) => void,
): Promise<UpdateOutcome> {
  const slot: { outcome: UpdateOutcome } = { outcome: "answered" };
  try {
    await current.run(slot, handle);
  } catch (error) {
    failed(error);
  }
  return slot.outcome;
}

/** The token was refused mid-update: stronger than "retry later" (the next token retries it anyway). */
export function markTokenRejected(): void {
  const slot = current.getStore();
  if (slot) slot.outcome = "tokenRejected";
}

/**
 * Asks for the update to be delivered again later. False when nobody handles outcomes here (no update in progress):
 * the caller must then deal with the failure itself.
 */
export function markRetryLater(): boolean {
  const slot = current.getStore();
  if (!slot) return false;
  if (slot.outcome === "answered") slot.outcome = "retryLater";
  return true;
}
