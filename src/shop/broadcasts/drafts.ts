import type { ShopDeps } from "../deps.ts";

/** How long the bot waits for an admin's broadcast text after «Рассылка» was pressed. */
const AWAIT_TTL_MS = 10 * 60_000;
/** How long a previewed draft can still be sent. */
const DRAFT_TTL_MS = 60 * 60_000;

const awaitKey = (adminId: number) => `bot:await-broadcast:${adminId}`;
const draftKey = (adminId: number) => `bot:broadcast-draft:${adminId}`;

/** A broadcast an admin wrote in the bot and saw previewed, waiting for «Отправить» or «Отмена». */
export type BroadcastDraft = { id: string; text: string };

function parseDraft(text: string | null): BroadcastDraft | null {
  if (!text) return null;
  try {
    const value = JSON.parse(text) as Partial<BroadcastDraft>;
    return typeof value.id === "string" && typeof value.text === "string" ? { id: value.id, text: value.text } : null;
  } catch {
    return null;
  }
}

/**
 * Where an admin's broadcast written in the bot stands between their messages: waiting for the text, then a draft
 * to confirm. Kept in the cache, so whichever process receives the admin's next update knows it, and so that it
 * lapses on its own when the admin walks away.
 */
export function createBroadcastDrafts(deps: ShopDeps) {
  const { cache } = deps;

  return {
    /** The admin pressed «Рассылка»: their next message is the text. */
    async awaitText(adminId: number): Promise<void> {
      await cache.set(awaitKey(adminId), "1", AWAIT_TTL_MS);
    },

    async awaitingText(adminId: number): Promise<boolean> {
      return Boolean(await cache.get(awaitKey(adminId)));
    },

    /** The admin cancelled, or moved on to something else. */
    async stopAwaiting(adminId: number): Promise<void> {
      await cache.del(awaitKey(adminId));
    },

    /** The text came: it becomes the admin's draft (replacing any earlier one), and the bot stops waiting. */
    async save(adminId: number, text: string): Promise<BroadcastDraft> {
      const draft: BroadcastDraft = { id: crypto.randomUUID().slice(0, 12), text };
      await cache.set(draftKey(adminId), JSON.stringify(draft), DRAFT_TTL_MS);
      await cache.del(awaitKey(adminId));
      return draft;
    },

    /**
     * The admin answered the draft with this id: it is theirs to send or drop, once. Null when it is gone, stale (a
     * newer draft replaced it) or already answered — a second press or a double tap never sends twice.
     */
    async take(adminId: number, id: string): Promise<BroadcastDraft | null> {
      const draft = parseDraft(await cache.get(draftKey(adminId)));
      const mine =
        draft?.id === id && (await cache.setIfAbsent(`bot:broadcast-draft-used:${id}`, "1", DRAFT_TTL_MS)) !== false;
      if (!draft || !mine) return null;
      await cache.del(draftKey(adminId));
      return draft;
    },
  };
}
