import { type Bot, type TelegramCallbackQuery, TelegramError, type TelegramInlineKeyboardMarkup } from "gramio";
import { log } from "../lib/log.ts";
import type { Checkout } from "../payments/checkout.ts";
import type { Shop } from "../shop/index.ts";

/** What the bot factory is built from: the domain, the checkout, and tunables (tests lower them). */
export type BotDeps = {
  shop: Shop;
  checkout: Checkout;
  /** Updates one non-admin user may send per minute before the bot stops answering them for the rest of it. */
  updatesPerMinute?: number;
};

export type BotApi = Bot["api"];

/** One screen of the bot: a text and its inline keyboard. */
export type Screen = { text: string; keyboard?: TelegramInlineKeyboardMarkup };

/** Where a screen goes: a new message in the chat, or in place of the message whose button was pressed. */
export type Place = { chatId: number; messageId?: number | undefined };

/** Where a pressed button's message is, so the answer replaces it. */
export const placeOf = (q: TelegramCallbackQuery): Place => ({
  chatId: q.message?.chat.id ?? q.from.id,
  messageId: q.message?.message_id,
});

const isNotModified = (error: unknown) =>
  error instanceof TelegramError && error.code === 400 && /message is not modified/i.test(error.message);

/**
 * Shows a screen. Pressing a button edits that message in place, so the chat does not fill with stale cards; when
 * the message can no longer be edited (too old, deleted) a new one is sent instead.
 */
export async function show(api: BotApi, place: Place, screen: Screen): Promise<void> {
  const markup = screen.keyboard ? { reply_markup: screen.keyboard } : {};
  if (place.messageId !== undefined) {
    try {
      await api.editMessageText({ chat_id: place.chatId, message_id: place.messageId, text: screen.text, ...markup });
      return;
    } catch (error) {
      if (isNotModified(error)) return;
      if (!(error instanceof TelegramError) || error.code !== 400) throw error;
      log.debug("message not editable, sending a new one", { chatId: place.chatId, error: error.message });
    }
  }
  await api.sendMessage({ chat_id: place.chatId, text: screen.text, ...markup });
}

/** Answers a button press (stops the spinner), optionally with a short notice. Never throws: the press is old news. */
export async function answer(
  api: BotApi,
  callbackQueryId: string,
  notice?: string,
  options: { alert?: boolean } = {},
): Promise<void> {
  try {
    await api.answerCallbackQuery({
      callback_query_id: callbackQueryId,
      ...(notice ? { text: notice, show_alert: options.alert ?? false } : {}),
    });
  } catch (error) {
    log.debug("answerCallbackQuery failed", { error });
  }
}
