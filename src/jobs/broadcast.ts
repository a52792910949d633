import type { Cache } from "../cache/cache.ts";
import { log } from "../lib/log.ts";
import type { Broadcasts, ClaimedRecipient } from "../shop/broadcasts.ts";
import { CHANNELS } from "../shop/deps.ts";
import { type Messenger, MessengerError } from "../shop/messenger.ts";

export type BroadcastJobOptions = {
  broadcasts: Broadcasts;
  cache: Cache;
  messenger: Messenger;
  /** Messages started per second, across the whole shop (Telegram allows about 30 per bot). */
  ratePerSecond?: number;
  /** Messages in flight at once: Telegram answers in 100–300 ms, so 25/s needs several. */
  concurrency?: number;
  /** Attempts per recipient before giving up (429s and transient errors count; a missing token does not). */
  maxAttempts?: number;
  /** How long a claimed recipient is held by this worker before another may take it. */
  claimLeaseMs?: number;
  /** How often an idle job looks for work it was not told about. */
  idlePollMs?: number;
  /** Lease of the "one sender per shop" lock; renewed every third of it. */
  lockTtlMs?: number;
  instanceId?: string;
};

export type BroadcastJob = {
  /** Stops claiming, lets messages in flight finish and puts the rest back in the queue. */
  stop(): Promise<void>;
  /** Look for work now (a broadcast was just created). */
  wake(): void;
};

export const BROADCAST_LOCK_KEY = "jobs:broadcast:lock";

/**
 * Sends pending broadcast messages. One instance of the shop sends at a time (a lease in the cache), so the rate
 * limit holds for the whole shop; recipients are claimed with SKIP LOCKED, so even two senders (say, while Redis
 * is down) never take the same recipient. On 429 every send waits Telegram's retry_after; on 403 the user is
 * marked as having blocked the bot.
 */
export function startBroadcastJob(options: BroadcastJobOptions): BroadcastJob {
  const { broadcasts, cache, messenger } = options;
  const rate = options.ratePerSecond ?? 25;
  const concurrency = options.concurrency ?? 8;
  const maxAttempts = options.maxAttempts ?? 5;
  const claimLeaseMs = options.claimLeaseMs ?? 5 * 60_000;
  const idlePollMs = options.idlePollMs ?? 2_000;
  const lockTtlMs = options.lockTtlMs ?? 15_000;
  const instanceId = options.instanceId ?? crypto.randomUUID();
  const batchSize = Math.max(concurrency, Math.min(Math.ceil(rate), 50));
  // 2 % of headroom: timers and the network jitter by a few milliseconds, and the limit is per sliding second.
  const intervalMs = (1000 / rate) * 1.02;

  let stopping = false;
  let holding = false;
  let pausedUntil = 0;
  let wakeUp: (() => void) | null = null;
  let stopped: () => void = () => {};
  const stopSignal = new Promise<void>((resolve) => {
    stopped = resolve;
  });

  /** Sleeps ms, or less if the job is stopped or woken. */
  async function nap(ms: number, wakeable = false): Promise<void> {
    const woken = wakeable ? new Promise<void>((resolve) => (wakeUp = resolve)) : null;
    await Promise.race([Bun.sleep(ms), stopSignal, ...(woken ? [woken] : [])]);
    wakeUp = null;
  }

  /**
   * Two gates with the same spacing: one paces how fast recipients are taken up, the other the HTTP requests
   * themselves, right before they leave — the database round trip in between jitters, and Telegram counts arrivals.
   * Both wait out a 429 pause. The launch gate gives up when the job stops; the send gate never does, because an
   * attempt already recorded must be completed.
   */
  function gate(stoppable: boolean) {
    let last = 0;
    return async (): Promise<boolean> => {
      for (;;) {
        if (stoppable && stopping) return false;
        const now = performance.now();
        const at = Math.max(last + intervalMs, pausedUntil - Date.now() + now);
        if (at <= now) {
          last = now;
          return true;
        }
        await (stoppable ? nap(at - now) : Bun.sleep(at - now));
      }
    };
  }
  const launchSlot = gate(true);
  const sendSlot = gate(false);

  async function holdLock(): Promise<boolean> {
    const answer = await cache.lease(BROADCAST_LOCK_KEY, instanceId, lockTtlMs);
    // Cache down: keep sending if we were the sender, do not start if we were not.
    if (answer !== null) {
      if (answer !== holding) log.info(answer ? "broadcast sender: this instance" : "broadcast sender: elsewhere");
      holding = answer;
    }
    return holding;
  }

  /** Sends one message; resolves true when Telegram accepted it (recorded with the batch, in one statement). */
  async function sendOne(r: ClaimedRecipient): Promise<boolean> {
    try {
      if (!(await broadcasts.startAttempt(r))) return false;
      try {
        await sendSlot();
        await messenger.sendText(r.userId, r.text);
        return true;
      } catch (error) {
        await recordFailure(r, error);
        return false;
      }
    } catch (error) {
      // The database failed around a send. Unrecorded attempts resolve themselves at the next claim.
      log.error("broadcast send bookkeeping failed", { broadcastId: r.broadcastId, userId: r.userId, error });
      return false;
    }
  }

  async function recordFailure(r: ClaimedRecipient, error: unknown): Promise<void> {
    const e =
      error instanceof MessengerError ? error : new MessengerError("failed", (error as Error)?.message ?? "error");
    const attempts = r.attempts + 1;
    switch (e.kind) {
      case "blocked":
        await broadcasts.markBlocked(r, e.message);
        return;
      case "rate_limited": {
        const waitMs = Math.max(1, e.retryAfterS) * 1000;
        pausedUntil = Math.max(pausedUntil, Date.now() + waitMs);
        log.warn("broadcast rate limited by Telegram", { retryAfterS: e.retryAfterS, userId: r.userId });
        if (attempts >= maxAttempts) await broadcasts.markFailed(r, `429 after ${attempts} attempts`);
        else await broadcasts.retryLater(r, waitMs, `429: retry after ${e.retryAfterS}s`);
        return;
      }
      case "not_configured":
        pausedUntil = Math.max(pausedUntil, Date.now() + 10_000);
        await broadcasts.retryLater(r, 10_000, e.message, false);
        return;
      case "failed":
        if (attempts >= maxAttempts) await broadcasts.markFailed(r, e.message);
        else await broadcasts.retryLater(r, 2 ** attempts * 1000, e.message);
        return;
    }
  }

  async function sendBatch(batch: ClaimedRecipient[]): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    const sent: ClaimedRecipient[] = [];
    let next = 0;
    while (next < batch.length && (await launchSlot())) {
      const r = batch[next]!;
      const sending: Promise<void> = sendOne(r)
        .then((ok) => {
          if (ok) sent.push(r);
        })
        .finally(() => inFlight.delete(sending));
      inFlight.add(sending);
      next++;
      while (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    await broadcasts.markSent(sent);
    // Stopping: the recipients never attempted go back to the queue for whoever sends next.
    await broadcasts.release(batch.slice(next));
    for (const id of new Set(batch.map((r) => r.broadcastId))) await broadcasts.finishIfDone(id);
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      try {
        if (!(await holdLock())) {
          // Checking a free lease is one cache round trip: do it often, so a stopped sender is replaced quickly.
          await nap(Math.min(1_000, lockTtlMs / 3));
          continue;
        }
        const batch = await broadcasts.claim(batchSize, claimLeaseMs);
        if (batch.length === 0) await nap(idlePollMs, true);
        else await sendBatch(batch);
      } catch (error) {
        log.error("broadcast job round failed", { error });
        await nap(2_000);
      }
    }
  }

  // A long 429 pause must not let the lock lapse while this instance is still the sender.
  const renew = setInterval(
    () => {
      if (holding) holdLock().catch(() => {});
    },
    Math.max(100, lockTtlMs / 3),
  );
  const unsubscribe = cache.subscribe(CHANNELS.broadcasts, () => wakeUp?.());
  const running = loop();

  return {
    async stop() {
      stopping = true;
      stopped();
      clearInterval(renew);
      await running;
      await (await unsubscribe)();
      if (holding) await cache.releaseLease(BROADCAST_LOCK_KEY, instanceId);
      holding = false;
    },
    wake() {
      wakeUp?.();
    },
  };
}
