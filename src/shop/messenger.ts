/**
 * How the domain's jobs (delivery, broadcast, admin alerts) and the checkout (giving Stars back) reach a Telegram
 * user, without knowing Telegram. The bot adapter implements it with the running bot's token; tests implement it
 * against a fake Bot API server.
 */
export type InlineButton = { text: string; url?: string; callbackData?: string };

export type OutgoingDocument = {
  /** Telegram's id of a file it already has (reused so a build is uploaded once). */
  fileId?: string | null;
  /** Otherwise a file on disk, uploaded with this name. */
  path?: string;
  filename?: string;
};

/** `signal` abandons the request in flight: a send given up on must not still complete later, beside its retry. */
export type SendOptions = { signal?: AbortSignal };

export interface Messenger {
  /** Sends a text; returns Telegram's id of the message, for a later edit. */
  sendText(
    chatId: number,
    text: string,
    options?: { buttons?: InlineButton[][] } & SendOptions,
  ): Promise<{ messageId: number | null }>;
  /**
   * Replaces the text (and the buttons: none when not given) of a message the bot sent. Editing it to what it
   * already says counts as done.
   */
  editText(
    chatId: number,
    messageId: number,
    text: string,
    options?: { buttons?: InlineButton[][] } & SendOptions,
  ): Promise<void>;
  /** Sends a document with a caption; returns Telegram's file_id of the document, to be reused. */
  sendDocument(
    chatId: number,
    document: OutgoingDocument,
    caption: string,
    options?: SendOptions,
  ): Promise<{ fileId: string | null }>;
  /**
   * Gives a Telegram Stars payment back to the buyer (refundStarPayment). A refusal is thrown as a MessengerError
   * whose message is Telegram's description (e.g. "400: Bad Request: CHARGE_ALREADY_REFUNDED").
   */
  refundStars(userId: number, telegramPaymentChargeId: string, options?: SendOptions): Promise<void>;
}

/**
 * Why a message was not delivered, in the terms a job acts on: `blocked` (403: the user blocked the bot — stop
 * trying), `rate_limited` (429: wait retryAfterS), `not_configured` (no bot token yet), `failed` (anything else:
 * retry with backoff).
 */
export class MessengerError extends Error {
  constructor(
    readonly kind: "blocked" | "rate_limited" | "not_configured" | "failed",
    message: string,
    readonly retryAfterS = 0,
  ) {
    super(message);
  }
}
