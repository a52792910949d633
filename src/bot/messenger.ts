import { Bot, MediaUpload, TelegramError } from "gramio";
import { type InlineButton, type Messenger, MessengerError, type OutgoingDocument } from "../shop/messenger.ts";

/** GramIO expects the Bot API root with "/bot" appended: requests go to `${baseURL}${token}/${method}`. */
export function botApiBase(telegramApiUrl: string): string {
  return `${telegramApiUrl.replace(/\/+$/, "")}/bot`;
}

function keyboard(buttons: InlineButton[][] | undefined) {
  if (!buttons || buttons.length === 0) return undefined;
  return {
    inline_keyboard: buttons.map((row) =>
      row.map((b) =>
        b.url ? { text: b.text, url: b.url } : { text: b.text, callback_data: b.callbackData ?? "noop" },
      ),
    ),
  };
}

function translate(error: unknown): MessengerError {
  if (error instanceof MessengerError) return error;
  if (error instanceof TelegramError) {
    if (error.code === 403) return new MessengerError("blocked", error.message);
    if (error.code === 429) return new MessengerError("rate_limited", error.message, error.payload?.retry_after ?? 1);
    return new MessengerError("failed", `${error.code}: ${error.message}`);
  }
  return new MessengerError("failed", (error as Error)?.message ?? String(error));
}

/**
 * A Messenger on the Bot API, always with the current token from the settings (a token changed in the panel is
 * used from the next message on). Only the API client of GramIO is used here: no polling, no handlers.
 */
export function createTelegramMessenger(options: {
  telegramApiUrl: string;
  token: () => Promise<string | null>;
}): Messenger {
  let cached: { token: string; bot: Bot } | null = null;

  // Returns the Bot, not bot.api: the api is a Proxy that answers every property, `then` included, so awaiting it
  // would call a Bot API method named "then".
  async function bot(signal: AbortSignal | undefined): Promise<Bot> {
    const token = await options.token();
    if (!token) throw new MessengerError("not_configured", "the bot token is not set");
    const baseURL = botApiBase(options.telegramApiUrl);
    // GramIO takes fetch options per Bot, not per call: a call that can be abandoned gets a Bot of its own (cheap:
    // no polling, no handlers), whose fetch carries the signal.
    if (signal) return new Bot(token, { api: { baseURL, fetchOptions: { signal } } });
    if (cached?.token !== token) cached = { token, bot: new Bot(token, { api: { baseURL } }) };
    return cached.bot;
  }

  return {
    async sendText(chatId, text, opts) {
      try {
        const markup = keyboard(opts?.buttons);
        const message = await (await bot(opts?.signal)).api.sendMessage({
          chat_id: chatId,
          text,
          ...(markup ? { reply_markup: markup } : {}),
        });
        return { messageId: message?.message_id ?? null };
      } catch (error) {
        throw translate(error);
      }
    },
    async editText(chatId, messageId, text, opts) {
      try {
        const markup = keyboard(opts?.buttons);
        await (await bot(opts?.signal)).api.editMessageText({
          chat_id: chatId,
          message_id: messageId,
          text,
          // Without a markup Telegram keeps the old buttons: an empty one removes them.
          reply_markup: markup ?? { inline_keyboard: [] },
        });
      } catch (error) {
        if (error instanceof TelegramError && error.code === 400 && /message is not modified/i.test(error.message)) {
          return;
        }
        throw translate(error);
      }
    },
    async sendDocument(chatId, document: OutgoingDocument, caption, opts) {
      try {
        let file: string | File;
        if (document.fileId) file = document.fileId;
        else if (document.path) file = await MediaUpload.path(document.path, document.filename);
        else throw new MessengerError("failed", "a document needs a fileId or a path");
        const message = await (await bot(opts?.signal)).api.sendDocument({ chat_id: chatId, document: file, caption });
        return { fileId: message.document?.file_id ?? null };
      } catch (error) {
        throw translate(error);
      }
    },
    async refundStars(userId, telegramPaymentChargeId, opts) {
      try {
        await (await bot(opts?.signal)).api.refundStarPayment({
          user_id: userId,
          telegram_payment_charge_id: telegramPaymentChargeId,
        });
      } catch (error) {
        throw translate(error);
      }
    },
  };
}
