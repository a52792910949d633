import { createHmac, timingSafeEqual } from "node:crypto";
import { hostname } from "node:os";
import { TelegramError, type TelegramUser } from "gramio";
import type { Config } from "../config.ts";
import { log } from "../lib/log.ts";
import type { Checkout } from "../payments/checkout.ts";
import { type BotState, tokenHint } from "../shop/bot/status.ts";
import type { Shop } from "../shop/index.ts";
import { BOT_COMMANDS } from "../shop/texts/buyers.ts";
import { createShopBot, type ShopBot } from "./bot.ts";
import { botApiBase } from "./messenger.ts";
import { ALLOWED_UPDATES, callApi, Poller } from "./polling.ts";
import { handleUpdate, isUpdate } from "./updates.ts";

/** The states are the shop's (src/shop/bot/status.ts): the panel and healthz show them without knowing the bot. */
export type BotRuntimeState = BotState;

export type BotRuntimeStatus = { state: BotRuntimeState; username: string | null; error: string | null };

export type BotRuntimeOptions = {
  shop: Shop;
  checkout: Checkout;
  config: Pick<Config, "telegramApiUrl" | "botWebhookUrl" | "botWebhookSecret" | "sessionSecret">;
  /** Names this process in the status reports. */
  instanceId?: string;
  /**
   * "The one instance that polls" is a Postgres session lock, checked every third of this. A killed instance frees
   * it at once (its connection closes); one that stops checking in without closing it is cut off after leaseMs
   * (at least 3 s).
   */
  leaseMs?: number;
  /** Long-poll timeout of getUpdates, seconds. */
  pollTimeoutS?: number;
  updatesPerMinute?: number;
};

export type BotRuntime = {
  start(): Promise<void>;
  /**
   * Stops receiving updates, lets the batch in hand finish, and gives the lock back. `release: false` drops the
   * lock's connection instead and leaves the status report to go stale, which is what a crashed instance looks
   * like to the others.
   */
  stop(options?: { release?: boolean }): Promise<void>;
  /** The webhook endpoint: checks Telegram's secret header, then handles the update. */
  handleWebhook(request: Request): Promise<Response>;
  status(): BotRuntimeStatus;
};

/** Telegram's webhook secret: BOT_WEBHOOK_SECRET, else one derived from SESSION_SECRET (same on every instance). */
export function webhookSecret(config: Pick<Config, "botWebhookSecret" | "sessionSecret">): string | null {
  if (config.botWebhookSecret) return config.botWebhookSecret;
  if (!config.sessionSecret) return null;
  return createHmac("sha256", config.sessionSecret).update("telegram-webhook").digest("base64url");
}

function sameSecret(given: string | null, expected: string): boolean {
  if (given === null) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Runs the bot with the token from the settings, in the running process:
 * - one instance of the shop (the holder of a Postgres session lock, so Redis up or down) polls Telegram — or, in
 *   webhook mode, registers the webhook — and the lock passes to another instance when that one dies;
 * - a new token in the settings (panel, CLI, another instance) stops the old poller after the batch in hand and
 *   starts the new one from the stored offset, so no update is lost or handled twice;
 * - a token Telegram refuses is reported in the log and the status, never thrown;
 * - the state is published through the shop (shop.botStatus), for the panel and healthz.
 */
export function createBotRuntime(options: BotRuntimeOptions): BotRuntime {
  const { shop, checkout, config } = options;
  const instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`;
  const leaseMs = options.leaseMs ?? 15_000;
  const lock = shop.botStatus.pollerLock(Math.max(leaseMs, 3_000));
  // Reported every third of leaseMs; a report outlives a few missed ones, then the instance counts as gone.
  const reportFreshMs = Math.max(leaseMs * 2, 5_000);
  const pollTimeoutS = options.pollTimeoutS ?? 25;
  const apiBase = botApiBase(config.telegramApiUrl);
  const webhookUrl = config.botWebhookUrl ?? null;
  const secret = webhookUrl ? webhookSecret(config) : null;

  type Current = { token: string; bot: ShopBot; info: TelegramUser | null; webhookSet: boolean };
  let current: Current | null = null;
  // Until the settings are read, the runtime does not know whether there is a token to try.
  let state: BotRuntimeState = "starting";
  let lastError: string | null = null;
  let leader = false;
  let poller: Poller | null = null;
  let stopped = false;
  let tick: ReturnType<typeof setInterval> | null = null;
  let unsubscribe: (() => void) | null = null;
  // Reconciliations run one at a time, in order: a token change never races a lease change.
  let chain: Promise<void> = Promise.resolve();

  function setState(next: BotRuntimeState, error: string | null = null): void {
    if (next !== state) log.info("bot state", { state: next, ...(error ? { error } : {}) });
    state = next;
    lastError = error;
    void publish();
  }

  function publish(): Promise<void> {
    if (stopped) return Promise.resolve();
    return shop.botStatus.report(
      instanceId,
      {
        state,
        username: current?.info?.username ?? null,
        error: lastError,
        tokenHint: current ? tokenHint(current.token) : null,
      },
      reportFreshMs,
    );
  }

  async function stopPoller(): Promise<void> {
    const p = poller;
    poller = null;
    if (p) await p.stop();
  }

  async function reconcileOnce(): Promise<void> {
    if (stopped) return;
    const token = (await shop.settings.get()).botToken;
    if (token !== (current?.token ?? null)) {
      await stopPoller();
      current = token
        ? {
            token,
            bot: createShopBot(token, config.telegramApiUrl, { shop, checkout, ...limits }),
            info: null,
            webhookSet: false,
          }
        : null;
      if (token) log.info("bot token changed; restarting the bot");
      setState(token ? "starting" : "no_token");
    }
    if (!current) {
      if (state !== "no_token") setState("no_token");
      return;
    }
    if (!current.info) {
      if (state === "invalid_token") return;
      try {
        await current.bot.init();
        current.info = current.bot.info ?? null;
        log.info("bot ready", { username: current.info?.username });
      } catch (error) {
        if (error instanceof TelegramError && (error.code === 401 || error.code === 404)) {
          log.error("Telegram rejected the bot token: set a valid one from @BotFather in the panel", {
            code: error.code,
          });
          setState("invalid_token", `Telegram: ${error.code} ${error.message}`);
        } else {
          log.warn("Telegram unreachable; will retry", { error: (error as Error).message });
          setState("unreachable", (error as Error).message);
        }
        return;
      }
    }
    const ready = current as Current & { info: TelegramUser };
    if (state === "invalid_token") return;
    if (!leader) {
      await stopPoller();
      setState("standby");
      return;
    }
    if (webhookUrl) {
      if (!ready.webhookSet) await registerWebhook(ready);
      return;
    }
    if (!poller) {
      poller = new Poller(ready, {
        apiBase,
        pollTimeoutS,
        positions: shop.botStatus,
        tokenRejected: (error) => setState("invalid_token", error),
      });
      setState("polling");
      await callApi(apiBase, ready.token, "setMyCommands", { commands: BOT_COMMANDS }).catch((error: unknown) =>
        log.warn("setMyCommands failed", { error }),
      );
    }
  }

  async function registerWebhook(ready: Current & { info: TelegramUser }): Promise<void> {
    if (!secret) {
      setState("unreachable", "webhook mode needs BOT_WEBHOOK_SECRET or SESSION_SECRET");
      log.error("webhook mode needs BOT_WEBHOOK_SECRET or SESSION_SECRET; the bot is not receiving updates");
      return;
    }
    try {
      await callApi(apiBase, ready.token, "setWebhook", {
        url: webhookUrl,
        secret_token: secret,
        allowed_updates: ALLOWED_UPDATES,
      });
      await callApi(apiBase, ready.token, "setMyCommands", { commands: BOT_COMMANDS }).catch(() => {});
      ready.webhookSet = true;
      setState("webhook");
    } catch (error) {
      log.error("setWebhook failed; will retry", { error: (error as Error).message });
      setState("unreachable", (error as Error).message);
    }
  }

  const limits = options.updatesPerMinute === undefined ? {} : { updatesPerMinute: options.updatesPerMinute };

  function reconcile(): Promise<void> {
    chain = chain.then(reconcileOnce).catch((error: unknown) => log.error("bot reconcile failed", { error }));
    return chain;
  }

  async function renewLease(): Promise<void> {
    const token = (await shop.settings.get()).botToken;
    // Without a token there is nothing to lead; the lock is taken once there is one.
    if (!token) return;
    // False with the database down as well: the bot cannot answer anyone without it, and whoever holds the lock
    // when it is back polls then.
    const answer = await lock.hold();
    if (answer !== leader) {
      leader = answer;
      log.info(leader ? "this instance receives the bot's updates" : "another instance receives the bot's updates");
    }
  }

  return {
    async start() {
      // Reported before anything is awaited: from the first request on, healthz and the panel know a bot runs here.
      void publish();
      unsubscribe = shop.settings.onChange((next) => {
        if (next.botToken !== (current?.token ?? null)) void reconcile();
      });
      await renewLease();
      await reconcile();
      if (state === "no_token") {
        log.info("bot not started: no token yet (panel «Основные настройки», or `bun run cli bot:set --token …`)");
      }
      tick = setInterval(
        () => {
          const wasLeader = leader;
          renewLease()
            .then(() => publish())
            .then(() => {
              if (leader !== wasLeader || state === "unreachable" || state === "starting" || state === "no_token")
                return reconcile();
            })
            .catch((error: unknown) => log.warn("bot lease renewal failed", { error }));
        },
        Math.max(50, Math.floor(leaseMs / 3)),
      );
    },

    async stop(stopOptions = {}) {
      stopped = true;
      if (tick) clearInterval(tick);
      unsubscribe?.();
      await chain;
      await stopPoller();
      if (stopOptions.release === false) {
        await lock.abandon();
      } else {
        await lock.release();
        await shop.botStatus.withdraw(instanceId);
      }
      leader = false;
    },

    async handleWebhook(request) {
      if (!webhookUrl || !secret) return new Response("webhook mode is off", { status: 404 });
      if (!sameSecret(request.headers.get("x-telegram-bot-api-secret-token"), secret)) {
        return new Response("secret token is invalid", { status: 401 });
      }
      let update: unknown;
      try {
        update = await request.json();
      } catch {
        return new Response("body must be a Telegram update (JSON)", { status: 400 });
      }
      if (!isUpdate(update)) return new Response("body must be a Telegram update (JSON)", { status: 400 });
      const target = current;
      // Not ready (token just changed, Telegram unreachable): Telegram retries a webhook that did not answer 200.
      if (!target?.info) return new Response("bot is not ready", { status: 503 });
      const outcome = await handleUpdate(target.bot, update);
      // Not 200, so Telegram delivers the update again: to the new token when this one was revoked while answering,
      // or later when the shop could not do it for now (its database away; Telegram's retries pace themselves).
      if (outcome === "tokenRejected") return new Response("bot token was rejected", { status: 503 });
      if (outcome === "retryLater") return new Response("the shop's database is unavailable", { status: 503 });
      return new Response("ok");
    },

    status() {
      return { state, username: current?.info?.username ?? null, error: lastError };
    },
  };
}
