import { log } from "../lib/log.ts";
import type { Shop } from "../shop/index.ts";
import type { AlertCopyWork } from "../shop/keys/sharing.ts";
import { type Messenger, MessengerError } from "../shop/messenger.ts";
import { backoff } from "./delivery.ts";

export type SharingAlertJobOptions = {
  /** How often to look for due copies when nothing in this process woke the job (another process raised one). */
  pollMs?: number;
  /** How long a claim holds a copy: longer than a send may take. */
  leaseMs?: number;
  /** Failed sends of one copy before giving up on it (until the alert changes again). */
  maxAttempts?: number;
};

export type SharingAlertJob = { stop: () => Promise<void> };

const DEFAULTS: Required<SharingAlertJobOptions> = { pollMs: 5_000, leaseMs: 60_000, maxAttempts: 10 };
const SEND_TIMEOUT_MS = 30_000;
const BATCH = 20;

/**
 * Keeps every admin's copy of every sharing alert saying what the alert says now: sends the copies of a new alert
 * (with its buttons) and edits them once an admin has decided (who did what, no buttons). Copies are claimed with
 * SKIP LOCKED and a lease, so every app process runs this job; the process that raises or decides an alert is woken
 * at once, the others find work when they poll.
 */
export function startSharingAlertJob(
  shop: Shop,
  messenger: Messenger,
  options: SharingAlertJobOptions = {},
): SharingAlertJob {
  const o = { ...DEFAULTS, ...options };
  let stopped = false;
  let signalled = false;
  let wakeUp: (() => void) | null = null;

  function signal(): void {
    signalled = true;
    wakeUp?.();
  }

  async function sleep(ms: number): Promise<void> {
    if (!signalled) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        wakeUp = done;
        function done() {
          clearTimeout(timer);
          wakeUp = null;
          resolve();
        }
      });
    }
    signalled = false;
  }

  /** Sends the copy, or edits the message it already is; a message that can no longer be edited is sent anew. */
  async function show(work: AlertCopyWork): Promise<number | null> {
    const options = { buttons: work.buttons, signal: AbortSignal.timeout(SEND_TIMEOUT_MS) };
    if (work.messageId !== null) {
      try {
        await messenger.editText(work.chatId, work.messageId, work.text, options);
        return work.messageId;
      } catch (error) {
        // 400: the admin deleted the message, or it is too old to edit: they still must hear who did what.
        if (!(error instanceof MessengerError) || error.kind !== "failed" || !/\b400\b/.test(error.message))
          throw error;
      }
    }
    return (await messenger.sendText(work.chatId, work.text, options)).messageId;
  }

  async function handle(work: AlertCopyWork): Promise<void> {
    const context = { alertId: work.alertId, chatId: work.chatId, version: work.version };
    let failure: MessengerError;
    try {
      await shop.sharing.copyShown(work, await show(work));
      return;
    } catch (error) {
      failure = error instanceof MessengerError ? error : new MessengerError("failed", (error as Error).message);
    }
    switch (failure.kind) {
      case "blocked":
        log.warn("sharing alert not delivered: the admin blocked the bot", context);
        await shop.sharing.dropCopy(work, failure.message);
        return;
      case "rate_limited":
        await shop.sharing.retryCopy(work, Math.max(failure.retryAfterS, 1) * 1000, failure.message, false);
        return;
      case "not_configured":
        await shop.sharing.retryCopy(work, 60_000, failure.message, false);
        return;
      case "failed":
        if (work.attempts >= o.maxAttempts) {
          log.error("sharing alert not delivered after every attempt", { ...context, error: failure.message });
          await shop.sharing.dropCopy(work, failure.message);
          return;
        }
        log.warn("sharing alert not delivered, will retry", { ...context, error: failure.message });
        await shop.sharing.retryCopy(work, backoff(work.attempts, 5_000, 600_000), failure.message, true);
        return;
    }
  }

  async function loop(): Promise<void> {
    while (!stopped) {
      let full = false;
      try {
        const batch = await shop.sharing.claimCopies(BATCH, o.leaseMs);
        full = batch.length === BATCH;
        // One at a time: a handful of admins per alert, and Telegram's limits are the bot's, not the job's.
        for (const work of batch) {
          await handle(work).catch((error) =>
            log.error("sharing alert copy failed; it is retried when its lease ends", { alertId: work.alertId, error }),
          );
        }
      } catch (error) {
        log.error("sharing alert job: could not claim work", { error });
      }
      if (stopped) break;
      if (!full) await sleep(o.pollMs);
    }
  }

  const stopListening = shop.sharing.onChanged(signal);
  const running = loop();
  log.info("sharing alert job started");

  return {
    stop: async () => {
      stopped = true;
      stopListening();
      signal();
      await running;
    },
  };
}
