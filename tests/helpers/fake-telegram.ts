/**
 * A fake Telegram Bot API: a real HTTP server on loopback that speaks the Bot API's wire format (JSON, form and
 * multipart requests; `{ok, result}` / `{ok:false, error_code, description, parameters}` answers). The bot under
 * test really long-polls it and really uploads files to it. Every call is recorded for assertions, and failures
 * (403 blocked, 429 with retry_after, rate limits) can be injected.
 */
import { createHash } from "node:crypto";

export type RecordedCall = {
  token: string;
  method: string;
  params: Record<string, unknown>;
  /** Uploaded files by field name: bytes kept for assertions. */
  files: Record<string, { name: string; size: number; sha256: string; bytes: Uint8Array }>;
  at: number;
  /** What the fake answered, when it answered ok (e.g. the sent message, with its message_id). */
  result?: unknown;
  /** The client gave up (closed the request) while the answer was delayed: nothing was sent. */
  aborted?: boolean;
};

export type FakeFailure = { code: number; description: string; retryAfter?: number };
type Hook = (call: RecordedCall) => FakeFailure | undefined;
type DelayHook = (call: RecordedCall) => number | undefined;

export type TgUser = { id: number; first_name: string; username?: string; last_name?: string; language_code?: string };

const ok = (result: unknown) => Response.json({ ok: true, result });
const fail = (f: FakeFailure) =>
  Response.json(
    {
      ok: false,
      error_code: f.code,
      description: f.description,
      ...(f.retryAfter ? { parameters: { retry_after: f.retryAfter } } : {}),
    },
    { status: f.code },
  );

export class FakeTelegram {
  readonly calls: RecordedCall[] = [];
  private server: ReturnType<typeof Bun.serve> | null = null;
  private readonly tokens: Set<string>;
  /** Pending updates and waiting getUpdates calls, by bot id. */
  private readonly queues = new Map<string, { update_id: number; [k: string]: unknown }[]>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly hooks: Hook[] = [];
  private readonly delays: DelayHook[] = [];
  private readonly knownFiles = new Set<string>();
  /** Text and keyboard of each message the bot sent or edited, by "chat:message": Telegram refuses a no-op edit. */
  private readonly texts = new Map<string, string>();
  private nextUpdateId = 1;
  private nextMessageId = 1;
  private rate: { perSecond: number; window: number[] } | null = null;
  /** Method calls answered 429 by the rate limiter (see limitRate). */
  rateLimited = 0;
  /** Every getUpdates call (not in `calls`, which would drown in them): which token polled, when. */
  readonly polls: { token: string; at: number }[] = [];
  /** getUpdates calls Telegram would have cut off with 409 because another one for the same bot came in. */
  conflicts = 0;
  private readonly activePolls = new Map<string, { wake: (conflict: boolean) => void; request: Request }>();

  constructor(tokens: string[]) {
    this.tokens = new Set(tokens);
  }

  /** The Bot API root to put in TELEGRAM_API_URL, e.g. http://127.0.0.1:43123 */
  get url(): string {
    if (!this.server) throw new Error("FakeTelegram is not started");
    return `http://127.0.0.1:${this.server.port}`;
  }

  start(): this {
    this.server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => this.handle(req) });
    return this;
  }

  async stop(): Promise<void> {
    for (const set of this.waiters.values()) for (const wake of set) wake();
    this.server?.stop(true);
    this.server = null;
  }

  addToken(token: string): void {
    this.tokens.add(token);
  }

  /** Like /revoke in BotFather: the token stops working (401); the bot and its pending updates stay. */
  revokeToken(token: string): void {
    this.tokens.delete(token);
  }

  /** Every failure hook sees each call; the first one that returns a failure answers it. */
  onCall(hook: Hook): () => void {
    this.hooks.push(hook);
    return () => {
      const i = this.hooks.indexOf(hook);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  /**
   * Delays answers, like a slow upload or a slow Telegram: the first hook that returns a number of milliseconds
   * holds that call's answer for so long. A call whose client closes the request meanwhile is marked `aborted` and
   * sends nothing (a simplification: real Telegram may still act on a request it has fully received).
   */
  delayAnswers(hook: DelayHook): () => void {
    this.delays.push(hook);
    return () => {
      const i = this.delays.indexOf(hook);
      if (i >= 0) this.delays.splice(i, 1);
    };
  }

  /** Answers 429 (retry_after 1) to sending methods beyond perSecond in any sliding second, like Telegram. */
  limitRate(perSecond: number | null): void {
    this.rate = perSecond === null ? null : { perSecond, window: [] };
  }

  /**
   * Queues an update for the bot this token belongs to; a pending getUpdates returns it at once. Updates belong to
   * the bot (the number before the colon), not to one token: after a token is regenerated, the new one receives
   * what is still pending, as with Telegram.
   */
  pushUpdate(token: string, update: Record<string, unknown>): number {
    const update_id = this.nextUpdateId++;
    const bot = botOf(token);
    const queue = this.queues.get(bot) ?? [];
    queue.push({ update_id, ...update });
    this.queues.set(bot, queue);
    for (const wake of this.waiters.get(bot) ?? []) wake();
    return update_id;
  }

  /** A text message from a user, as an update. */
  sendText(token: string, from: TgUser, text: string): number {
    return this.pushUpdate(token, {
      message: {
        message_id: this.nextMessageId++,
        date: Math.floor(Date.now() / 1000),
        chat: { id: from.id, type: "private", first_name: from.first_name },
        from: { is_bot: false, ...from },
        text,
        ...(text.startsWith("/")
          ? { entities: [{ type: "bot_command", offset: 0, length: text.split(" ")[0]!.length }] }
          : {}),
      },
    });
  }

  /** A press of an inline button under one of the bot's messages, as an update. */
  pressButton(token: string, from: TgUser, data: string, message: { message_id: number; text?: string }): number {
    return this.pushUpdate(token, {
      callback_query: {
        id: String(this.nextUpdateId * 1000 + Math.floor(Math.random() * 1000)),
        from: { is_bot: false, ...from },
        chat_instance: String(from.id),
        data,
        message: {
          message_id: message.message_id,
          date: Math.floor(Date.now() / 1000),
          chat: { id: from.id, type: "private", first_name: from.first_name },
          from: { id: 1, is_bot: true, first_name: "Bot" },
          text: message.text ?? "",
        },
      },
    });
  }

  /**
   * Telegram's check before it takes the Stars of an invoice the bot sent (sendInvoice): a pre_checkout_query update.
   * Resolves with the bot's answerPreCheckoutQuery to it.
   */
  async preCheckout(
    token: string,
    from: TgUser,
    invoice: { payload: string; total_amount: number; currency?: string },
  ): Promise<RecordedCall> {
    const id = `pcq-${this.nextUpdateId}-${Math.floor(Math.random() * 1e6)}`;
    this.pushUpdate(token, {
      pre_checkout_query: {
        id,
        from: { is_bot: false, ...from },
        currency: invoice.currency ?? "XTR",
        total_amount: invoice.total_amount,
        invoice_payload: invoice.payload,
      },
    });
    return await this.waitFor((calls) =>
      calls.find((c) => c.method === "answerPreCheckoutQuery" && c.params.pre_checkout_query_id === id),
    );
  }

  /**
   * The Stars taken: a message with successful_payment, as Telegram sends it after an ok pre-checkout. `chargeId`
   * (telegram_payment_charge_id) defaults to a new one; give the same one to repeat the update. The charge is
   * remembered, so refundStarPayment can give it back once.
   */
  successfulPayment(
    token: string,
    from: TgUser,
    payment: { payload: string; total_amount: number; currency?: string; chargeId?: string },
  ): { updateId: number; chargeId: string } {
    const chargeId = payment.chargeId ?? `stxCharge${this.nextUpdateId}x${Math.floor(Math.random() * 1e9)}`;
    if (!this.charges.has(chargeId)) this.charges.set(chargeId, { userId: from.id, refunded: false });
    const updateId = this.pushUpdate(token, {
      message: {
        message_id: this.nextMessageId++,
        date: Math.floor(Date.now() / 1000),
        chat: { id: from.id, type: "private", first_name: from.first_name },
        from: { is_bot: false, ...from },
        successful_payment: {
          currency: payment.currency ?? "XTR",
          total_amount: payment.total_amount,
          invoice_payload: payment.payload,
          telegram_payment_charge_id: chargeId,
          provider_payment_charge_id: "",
        },
      },
    });
    return { updateId, chargeId };
  }

  /**
   * The buyer pays an invoice the bot sent, as Telegram runs it: the pre-checkout first, and only if the bot says ok,
   * the payment. Resolves with the bot's answer to the pre-checkout and, when paid, the charge id.
   */
  async payInvoice(
    token: string,
    from: TgUser,
    invoice: RecordedCall,
  ): Promise<{ preCheckout: RecordedCall; chargeId: string | null }> {
    const prices = invoice.params.prices as { amount: number }[];
    const details = {
      payload: String(invoice.params.payload),
      total_amount: prices.reduce((sum, p) => sum + p.amount, 0),
      currency: String(invoice.params.currency),
    };
    const preCheckout = await this.preCheckout(token, from, details);
    if (preCheckout.params.ok !== true) return { preCheckout, chargeId: null };
    return { preCheckout, chargeId: this.successfulPayment(token, from, details).chargeId };
  }

  /** Charges made by successfulPayment, and whether refundStarPayment gave them back. */
  readonly charges = new Map<string, { userId: number; refunded: boolean }>();

  callsOf(method: string, chatId?: number): RecordedCall[] {
    return this.calls.filter(
      (c) => c.method === method && (chatId === undefined || Number(c.params.chat_id) === chatId),
    );
  }

  /** The last message (sendMessage/editMessageText/sendDocument) the bot sent to this chat. */
  lastTo(chatId: number): RecordedCall | undefined {
    return this.calls.filter((c) => SENDS.has(c.method) && Number(c.params.chat_id) === chatId).at(-1);
  }

  /** Waits until the predicate holds over the recorded calls (polling every 10 ms), or throws after timeoutMs. */
  async waitFor<T>(predicate: (calls: RecordedCall[]) => T | undefined | false, timeoutMs = 3_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = predicate(this.calls);
      if (value) return value;
      if (Date.now() > deadline) {
        const tail = this.calls.slice(-5).map((c) => `${c.method} ${JSON.stringify(c.params).slice(0, 200)}`);
        throw new Error(`FakeTelegram.waitFor timed out; last calls:\n${tail.join("\n")}`);
      }
      await Bun.sleep(10);
    }
  }

  private async parse(req: Request): Promise<{ params: Record<string, unknown>; files: RecordedCall["files"] }> {
    const params: Record<string, unknown> = Object.fromEntries(new URL(req.url).searchParams);
    const files: RecordedCall["files"] = {};
    const type = req.headers.get("content-type") ?? "";
    if (type.includes("application/json")) {
      const text = await req.text();
      if (text) Object.assign(params, JSON.parse(text) as Record<string, unknown>);
    } else if (type.includes("multipart/form-data") || type.includes("application/x-www-form-urlencoded")) {
      const form = await req.formData();
      for (const [name, entry] of form.entries()) {
        const value = entry as unknown as string | File;
        if (typeof value === "string") {
          params[name] = tryJson(value);
        } else {
          const bytes = new Uint8Array(await value.arrayBuffer());
          files[name] = { name: value.name, size: bytes.length, sha256: sha256(bytes), bytes };
          params[name] = `<file:${value.name}>`;
        }
      }
    }
    // A file may also be referenced as attach://name (sendMediaGroup etc.).
    return { params, files };
  }

  private async handle(req: Request): Promise<Response> {
    const match = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(new URL(req.url).pathname);
    if (!match) return fail({ code: 404, description: "Not Found" });
    const [, token, method] = match as unknown as [string, string, string];
    if (!this.tokens.has(token)) return fail({ code: 401, description: "Unauthorized" });
    const { params, files } = await this.parse(req);
    const call: RecordedCall = { token, method, params, files, at: Date.now() };
    if (method !== "getUpdates") this.calls.push(call);
    else this.polls.push({ token, at: call.at });

    const delayMs = this.delays.map((hook) => hook(call)).find((ms) => ms !== undefined);
    if (delayMs !== undefined) {
      const gaveUp = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), delayMs);
        req.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (gaveUp || req.signal.aborted) {
        call.aborted = true;
        return fail({ code: 499, description: "Client Closed Request" });
      }
    }
    for (const hook of this.hooks) {
      const failure = hook(call);
      if (failure) return fail(failure);
    }
    if (this.rate && SENDS.has(method)) {
      const now = Date.now();
      this.rate.window = this.rate.window.filter((t) => now - t < 1000);
      if (this.rate.window.length >= this.rate.perSecond) {
        this.rateLimited++;
        return fail({ code: 429, description: "Too Many Requests: retry after 1", retryAfter: 1 });
      }
      this.rate.window.push(now);
    }
    const response = await this.answer(token, method, params, files, req);
    if (response.ok && method !== "getUpdates") {
      call.result = ((await response.clone().json()) as { result?: unknown }).result;
    }
    return response;
  }

  private async answer(
    token: string,
    method: string,
    params: Record<string, unknown>,
    files: RecordedCall["files"],
    req: Request,
  ): Promise<Response> {
    const botId = Number(token.split(":")[0]);
    const chat = { id: Number(params.chat_id), type: "private" };
    const message = (extra: Record<string, unknown>) => ({
      message_id: this.nextMessageId++,
      date: Math.floor(Date.now() / 1000),
      chat,
      from: { id: botId, is_bot: true, first_name: "Morpheus Shop", username: "morpheus_test_bot" },
      ...extra,
    });
    // Telegram counts a message's length after entities; the shop sends plain text, where that is its length.
    if ((method === "sendMessage" || method === "editMessageText") && String(params.text ?? "").length > 4096) {
      return fail({ code: 400, description: "Bad Request: message is too long" });
    }
    switch (method) {
      case "getMe":
        return ok({ id: botId, is_bot: true, first_name: "Morpheus Shop", username: "morpheus_test_bot" });
      case "getUpdates": {
        const updates = await this.updates(token, params, req);
        return updates === "conflict"
          ? fail({
              code: 409,
              description:
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
            })
          : ok(updates);
      }
      case "sendMessage": {
        const sent = message({ text: params.text, reply_markup: params.reply_markup });
        this.texts.set(`${chat.id}:${sent.message_id}`, JSON.stringify([params.text, params.reply_markup ?? null]));
        return ok(sent);
      }
      case "editMessageText": {
        const id = `${chat.id}:${Number(params.message_id)}`;
        const content = JSON.stringify([params.text, params.reply_markup ?? null]);
        if (this.texts.get(id) === content) {
          return fail({
            code: 400,
            description:
              "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
          });
        }
        this.texts.set(id, content);
        return ok(
          message({ message_id: Number(params.message_id), text: params.text, reply_markup: params.reply_markup }),
        );
      }
      case "sendDocument": {
        const upload = files.document;
        let fileId: string;
        if (upload) {
          fileId = `doc_${upload.sha256.slice(0, 16)}`;
          this.knownFiles.add(fileId);
        } else {
          fileId = String(params.document);
          if (!this.knownFiles.has(fileId))
            return fail({ code: 400, description: "Bad Request: wrong file identifier" });
        }
        return ok(
          message({
            caption: params.caption,
            document: {
              file_id: fileId,
              file_unique_id: `u${fileId}`,
              file_name: upload?.name,
              file_size: upload?.size,
            },
          }),
        );
      }
      case "sendInvoice": {
        // What Telegram itself checks for an invoice in Stars: one price, a whole positive number, no provider token.
        const prices = params.prices as { label?: string; amount?: number }[] | undefined;
        if (params.currency === "XTR") {
          if (params.provider_token !== undefined && params.provider_token !== "") {
            return fail({ code: 400, description: "Bad Request: provider_token must be empty for XTR" });
          }
          if (
            !Array.isArray(prices) ||
            prices.length !== 1 ||
            !Number.isInteger(prices[0]?.amount) ||
            prices[0]!.amount! <= 0
          ) {
            return fail({ code: 400, description: "Bad Request: CURRENCY_TOTAL_AMOUNT_INVALID" });
          }
        }
        if (String(params.title ?? "").length > 32 || String(params.description ?? "").length > 255) {
          return fail({ code: 400, description: "Bad Request: invoice title or description is too long" });
        }
        return ok(
          message({
            invoice: {
              title: params.title,
              description: params.description,
              start_parameter: "",
              currency: params.currency,
              total_amount: (prices ?? []).reduce((sum, p) => sum + (p.amount ?? 0), 0),
            },
          }),
        );
      }
      case "answerPreCheckoutQuery":
        if (params.ok === false && !params.error_message) {
          return fail({ code: 400, description: "Bad Request: error_message is required when ok is false" });
        }
        return ok(true);
      case "refundStarPayment": {
        const charge = this.charges.get(String(params.telegram_payment_charge_id));
        if (!charge || charge.userId !== Number(params.user_id)) {
          return fail({ code: 400, description: "Bad Request: CHARGE_NOT_FOUND" });
        }
        if (charge.refunded) return fail({ code: 400, description: "Bad Request: CHARGE_ALREADY_REFUNDED" });
        charge.refunded = true;
        return ok(true);
      }
      case "getWebhookInfo":
        return ok({ url: "", has_custom_certificate: false, pending_update_count: 0 });
      default:
        // answerCallbackQuery, editMessageReplyMarkup, deleteMessage, setWebhook, deleteWebhook, setMyCommands…
        return ok(true);
    }
  }

  private async updates(
    token: string,
    params: Record<string, unknown>,
    req: Request,
  ): Promise<{ update_id: number }[] | "conflict"> {
    const bot = botOf(token);
    const offset = Number(params.offset ?? 0);
    const timeoutS = Math.min(Number(params.timeout ?? 0), 2);
    // Telegram serves one getUpdates per bot at a time: a newer request cuts the older one off with 409. A request
    // its client has already abandoned (aborted) is not a conflict.
    const previous = this.activePolls.get(bot);
    if (previous && !previous.request.signal.aborted) previous.wake(true);
    let queue = (this.queues.get(bot) ?? []).filter((u) => u.update_id >= offset);
    this.queues.set(bot, queue);
    if (queue.length === 0 && timeoutS > 0 && this.server) {
      const conflict = await new Promise<boolean>((resolve) => {
        const set = this.waiters.get(bot) ?? new Set();
        this.waiters.set(bot, set);
        const wake = (isConflict = false) => {
          set.delete(plain);
          clearTimeout(timer);
          if (this.activePolls.get(bot)?.wake === wake) this.activePolls.delete(bot);
          resolve(isConflict);
        };
        const plain = () => wake(false);
        const timer = setTimeout(plain, timeoutS * 1000);
        set.add(plain);
        this.activePolls.set(bot, { wake, request: req });
      });
      if (conflict) {
        this.conflicts++;
        return "conflict";
      }
      queue = (this.queues.get(bot) ?? []).filter((u) => u.update_id >= offset);
    }
    return queue.slice(0, Number(params.limit ?? 100));
  }
}

const botOf = (token: string) => token.split(":")[0]!;

const SENDS = new Set(["sendMessage", "editMessageText", "sendDocument", "sendPhoto", "copyMessage"]);

function tryJson(value: string): unknown {
  if (!/^[[{]/.test(value)) return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export const TEST_TOKEN = "123456789:AAH-test-token-0000000000000000000";
export const OTHER_TOKEN = "987654321:AAH-other-token-000000000000000000";
