import type { Shop } from "../shop/index.ts";
import type { Actor } from "../shop/keys/events.ts";
import { field } from "./respond.ts";

/** What the owner can do to one key, from its row in a product's list and from its own page alike. */
export type KeyAction = "reset-hwid" | "ban" | "unban" | "extend" | "note";
export const KEY_ACTIONS: readonly KeyAction[] = ["reset-hwid", "ban", "unban", "extend", "note"];

export function keyAction(name: string | undefined): KeyAction | null {
  return KEY_ACTIONS.find((a) => a === name) ?? null;
}

/**
 * Does it, as `by`, and says what was done in the owner's words. A refusal (ShopError: a key not sold yet, days out of
 * range) is thrown for the caller to show where it belongs.
 */
export async function applyKeyAction(
  shop: Shop,
  keyId: number,
  action: KeyAction,
  body: unknown,
  by: Actor,
): Promise<string> {
  switch (action) {
    case "reset-hwid":
      await shop.keys.resetHwid({ id: keyId }, by);
      return "HWID сброшен: ключ привяжется к следующему ПК.";
    case "ban":
      await shop.keys.setBanned({ id: keyId }, true, by);
      return "Ключ забанен.";
    case "unban":
      await shop.keys.setBanned({ id: keyId }, false, by);
      return "Ключ разбанен.";
    case "extend": {
      const text = field(body, "days").trim();
      const days = /^\d{1,4}$/.test(text) ? Number(text) : Number.NaN;
      await shop.keys.extend({ id: keyId }, days, by);
      return `Продлён на ${days} дн.`;
    }
    case "note":
      await shop.keys.setNote({ id: keyId }, field(body, "note"), by);
      return "Заметка сохранена.";
  }
}
