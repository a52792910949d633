import { TelegramError, type TelegramUser } from "gramio";
import { log } from "../lib/log.ts";
import type { BotStatusService } from "../shop/bot/status.ts";
import type { ShopBot } from "./bot.ts";
import { handleBatch, isUpdate } from "./updates.ts";

/** The updates the shop's bot asks Telegram for, polling or by webhook. */
export const ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member", "pre_checkout_query"];

/** A Bot API call with our own fetch, so that it can be aborted; a refusal is thrown as GramIO's TelegramError. */
export async function callApi<T>(
  apiBase: string,
  token: string,
  method: string,
  params: object,
  signal?: AbortSignal,
): Promise<T> {
  const response = await fetch(`${apiBase}${token}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(params),
    ...(signal ? { signal } : {}),
  });
  const body = (await response.json().catch(() => null)) as {
    ok?: boolean;
    result?: T;
    error_code?: number;
    description?: string;
    parameters?: { retry_after?: number };
  } | null;
  if (body?.ok === true) return body.result as T;
  throw new TelegramError(
    {
      ok: false,
      error_code: body?.error_code ?? response.status,
      description: body?.description ?? `HTTP ${response.status}`,
      ...(body?.parameters ? { parameters: body.parameters } : {}),
    },
    method as "getUpdates",
    params as never,
  );
}

/** The pause before handling again updates the shop could not do for now: the first, and the longest. */
export const RETRY_LATER_FIRST_MS = 1_000;
export const RETRY_LATER_MAX_MS = 30_000;

/** The token being polled, with the bot that answers its updates and whom Telegram says it belongs to. */
export type PollTarget = { token: string; bot: ShopBot; info: TelegramUser };

export type PollerDeps = {
  apiBase: string;
  /** Long-poll timeout of getUpdates, seconds. */
  pollTimeoutS: number;
  /** Where polling of a bot stands, kept by the shop so the next poller starts there. */
  positions: Pick<BotStatusService, "pollingPosition" | "savePollingPosition">;
  /** Telegram refused the token (while polling, or in the middle of a batch): the runtime reports it. */
  tokenRejected(error: string): void;
};

/**
 * The long-polling loop of one token. Our own loop rather than GramIO's: stopping must abort the getUpdates in
 * flight (GramIO's cannot), and the offset is kept by the shop (in PostgreSQL) so the next poller — after a token
 * change, or on another instance — starts exactly where this one stopped.
 */
export class Poller {
  private readonly controller = new AbortController();
  private halted = false;
  readonly done: Promise<void>;

  constructor(
    private readonly target: PollTarget,
    private readonly deps: PollerDeps,
  ) {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    const { token, bot, info } = this.target;
    const { apiBase, pollTimeoutS } = this.deps;
    const saved = await this.deps.positions.pollingPosition(info.id).catch((error: unknown) => {
      // Telegram keeps its own position too (what was confirmed by the last getUpdates): start from there.
      log.warn("polling position unavailable; starting where Telegram stands", { error: (error as Error).message });
      return { next: 0, answered: [] };
    });
    let offset = saved.next;
    // Updates at or above the offset that an earlier poller already answered (see below): not answered twice.
    let answered = new Set(saved.answered);
    let failures = 0;
    // Batches in a row that left updates to be handled again (the database away): paces those attempts.
    let retries = 0;
    while (!this.halted) {
      let updates: unknown;
      try {
        updates = await callApi<unknown>(
          apiBase,
          token,
          "getUpdates",
          { offset, timeout: pollTimeoutS, allowed_updates: ALLOWED_UPDATES },
          // A connection that silently died must not hang the poller: Telegram answers within the long-poll timeout.
          AbortSignal.any([this.controller.signal, AbortSignal.timeout((pollTimeoutS + 15) * 1000)]),
        );
        failures = 0;
      } catch (error) {
        if (this.halted) break;
        failures++;
        if (error instanceof TelegramError && error.code === 409 && /webhook/i.test(error.message)) {
          log.warn("a webhook is set for this bot; removing it to poll", { bot: info.username });
          await callApi(apiBase, token, "deleteWebhook", {}).catch(() => {});
          continue;
        }
        if (error instanceof TelegramError && (error.code === 401 || error.code === 404)) {
          log.error("Telegram rejected the bot token while polling", { code: error.code, error: error.message });
          this.deps.tokenRejected(error.message);
          break;
        }
        // 409 "terminated by other getUpdates" means another process polls this bot (not one of ours, or one
        // that lost its lease): back off and try again.
        log.warn("getUpdates failed", { error: (error as Error).message, failures });
        await Promise.race([Bun.sleep(Math.min(30_000, 500 * 2 ** failures)), this.aborted()]);
        continue;
      }
      const received = Array.isArray(updates) ? updates.filter(isUpdate) : [];
      if (received.length === 0) continue;
      const batch = received.filter((u) => !answered.has(u.update_id));
      const unanswered = await handleBatch(bot, batch);
      if (unanswered.length > 0) {
        // Kept: Telegram delivers the updates from `next` on again. The later ones that were answered are
        // remembered, so that they are not answered twice.
        const kept = unanswered.map((u) => u.updateId);
        const next = Math.min(...kept);
        answered = new Set([
          ...[...answered].filter((id) => id >= next),
          ...batch.map((u) => u.update_id).filter((id) => id > next && !kept.includes(id)),
        ]);
        offset = next;
        await this.savePosition(info.id, next, [...answered]);
        if (unanswered.some((u) => u.outcome === "tokenRejected")) {
          // The token was revoked while answering: whoever polls next with the new token takes them from here.
          log.error("the bot token was revoked while answering; waiting for a new token", { unanswered: kept.length });
          this.deps.tokenRejected("Telegram: 401 Unauthorized");
          break;
        }
        // The shop could not do them for now (its database is away): the same updates again after a pause, for as
        // long as it takes, the poller running on. A pause that grows, so an outage is not hammered.
        retries++;
        const pauseMs = Math.min(RETRY_LATER_MAX_MS, RETRY_LATER_FIRST_MS * 2 ** (retries - 1));
        log.warn("updates kept to be handled again", { updateIds: kept, retries, pauseMs });
        await Promise.race([Bun.sleep(pauseMs), this.aborted()]);
        continue;
      }
      retries = 0;
      offset = Math.max(...received.map((u) => u.update_id)) + 1;
      answered = new Set([...answered].filter((id) => id >= offset));
      await this.savePosition(info.id, offset, [...answered]);
    }
  }

  /** Saved after every batch; a failed save costs at most that batch being seen again by the next poller. */
  private async savePosition(botId: number, next: number, answered: number[]): Promise<void> {
    await this.deps.positions
      .savePollingPosition(botId, next, answered)
      .catch((error: unknown) => log.warn("polling position not saved", { error: (error as Error).message }));
  }

  private aborted(): Promise<void> {
    return new Promise((resolve) => {
      if (this.controller.signal.aborted) resolve();
      else this.controller.signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }

  async stop(): Promise<void> {
    this.halted = true;
    this.controller.abort();
    await this.done;
  }
}
