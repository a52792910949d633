import { hostname } from "node:os";
import { log } from "../lib/log.ts";
import type { Broadcasts, ClaimedRecipient } from "../shop/broadcasts/broadcasts.ts";
import { type Messenger, MessengerError } from "../shop/messenger.ts";

export type BroadcastJobOptions = {
  broadcasts: Broadcasts;
  messenger: Messenger;
  /** Messages sent per second, across the whole shop (Telegram allows about 30 per bot). */
  ratePerSecond?: number;
  /** Messages in flight at once: Telegram answers in 100–300 ms, so 25/s needs several. */
  concurrency?: number;
  /** Attempts per recipient before giving up (429s and transient errors count; a missing token does not). */
  maxAttempts?: number;
  /**
   * How long a claimed recipient stays this sender's without renewal. Renewed every third of it while the sender
   * lives, so it only matters when the sender is killed: its untried recipients are sent by another after this.
   */
  claimLeaseMs?: number;
  /** How often an idle job looks for work it was not told about. */
  idlePollMs?: number;
  /**
   * The "one sender per shop" lock is checked every third of this; a sender that stops checking in (a machine
   * gone without closing its connection) is cut off by the database after it. A killed process frees it at once.
   */
  lockTtlMs?: number;
  /** A request Telegram has not answered after this is given up on; its message may have arrived (unconfirmed). */
  sendTimeoutMs?: number;
  instanceId?: string;
};

export type BroadcastJob = {
  /** Stops claiming, lets messages in flight finish and puts the rest back in the queue. */
  stop(): Promise<void>;
  /** Look for work now (a broadcast was just created). */
  wake(): void;
};

/** Telegram's 400s (chat not found, user deactivated, text refused) say the same however often they are asked. */
export function isPermanentRefusal(error: MessengerError): boolean {
  return error.kind === "failed" && /^400\b/.test(error.message);
}

/**
 * Sends pending broadcast messages. One instance of the shop sends at a time (a Postgres session lock, so the rate
 * limit holds for the whole shop with Redis up or down); recipients are claimed with SKIP LOCKED, so even two
 * senders never take the same recipient. On 429 every send waits Telegram's retry_after; on 403 the user is
 * marked as having blocked the bot; a 400 is final for that recipient.
 *
 * Crash safety: each attempt is recorded right before its request leaves and its outcome right after the answer,
 * one recipient at a time. A sender killed at any moment therefore leaves three kinds of recipients: recorded ones
 * (never sent again), untried claims (sent by the next sender once their short lease runs out), and at most
 * `concurrency` whose request was on its way — those end up `unconfirmed` and are not sent again, since Telegram
 * offers no way to ask whether a message arrived and a second copy is worse than a missing one.
 */
export function startBroadcastJob(options: BroadcastJobOptions): BroadcastJob {
  const { broadcasts, messenger } = options;
  const rate = options.ratePerSecond ?? 25;
  const concurrency = options.concurrency ?? 8;
  const maxAttempts = options.maxAttempts ?? 5;
  const claimLeaseMs = options.claimLeaseMs ?? 10_000;
  const idlePollMs = options.idlePollMs ?? 2_000;
  const lockTtlMs = options.lockTtlMs ?? 15_000;
  const sendTimeoutMs = options.sendTimeoutMs ?? 30_000;
  const instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`;
  const batchSize = Math.max(concurrency, Math.min(Math.ceil(rate), 50));
  // 2 % of headroom: timers and the network jitter by a few milliseconds, and the limit is per sliding second.
  const intervalMs = (1000 / rate) * 1.02;
  const lock = broadcasts.senderLock(Math.max(lockTtlMs, 3_000));

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

  /** Paces how fast recipients are taken up, and waits out a 429 pause; gives up when the job stops. */
  let lastLaunch = 0;
  async function launchSlot(): Promise<boolean> {
    for (;;) {
      if (stopping) return false;
      const now = performance.now();
      const at = Math.max(lastLaunch + intervalMs, pausedUntil - Date.now() + now);
      if (at <= now) {
        lastLaunch = now;
        return true;
      }
      await nap(at - now);
    }
  }

  /**
   * The last gate, right before a request leaves, after its attempt is recorded: never more than `rate` requests in
   * any sliding second as Telegram counts arrivals — the database round trip before it jitters, and so does the way
   * to Telegram, hence a window a little longer than a second. Normally it does not wait at all, and at most for a
   * few milliseconds: this is the only wait between recording an attempt and sending it. False when Telegram asked
   * to pause meanwhile: the request must not leave now.
   */
  const departures: number[] = [];
  const windowMs = 1050;
  async function departureSlot(): Promise<boolean> {
    for (;;) {
      if (pausedUntil > Date.now()) return false;
      const now = performance.now();
      while (departures.length > 0 && now - departures[0]! >= windowMs) departures.shift();
      if (departures.length < rate) {
        departures.push(now);
        return true;
      }
      await Bun.sleep(departures[0]! + windowMs - now);
    }
  }

  async function holdLock(): Promise<boolean> {
    const answer = await lock.hold();
    if (answer !== holding) log.info(answer ? "broadcast sender: this instance" : "broadcast sender: elsewhere");
    holding = answer;
    return holding;
  }

  /** Sends one message and records what became of it, at once. */
  async function sendOne(r: ClaimedRecipient): Promise<void> {
    try {
      if (!(await broadcasts.startAttempt(r))) return;
      if (!(await departureSlot())) {
        // A 429 arrived while the attempt was being recorded: it never left, so it does not count.
        await broadcasts.retryLater(r, Math.max(0, pausedUntil - Date.now()), "paused by Telegram (429)", false);
        return;
      }
      const timeout = AbortSignal.timeout(sendTimeoutMs);
      try {
        await messenger.sendText(r.userId, r.text, { signal: timeout });
      } catch (error) {
        if (timeout.aborted) {
          await broadcasts.markUnconfirmed(r, `no answer from Telegram in ${sendTimeoutMs} ms: delivery unknown`);
          return;
        }
        await recordFailure(r, error);
        return;
      }
      await broadcasts.markSent(r);
    } catch (error) {
      // The database failed around a send. An attempt left recorded resolves as unconfirmed at a later claim.
      log.error("broadcast send bookkeeping failed", { broadcastId: r.broadcastId, userId: r.userId, error });
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
        if (isPermanentRefusal(e)) await broadcasts.markFailed(r, e.message);
        else if (attempts >= maxAttempts) await broadcasts.markFailed(r, e.message);
        else await broadcasts.retryLater(r, 2 ** attempts * 1000, e.message);
        return;
    }
  }

  async function sendBatch(batch: ClaimedRecipient[]): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    // Recipients still in this sender's hands: their hold is renewed until each is recorded or given back.
    const held = new Set(batch);
    const renew = setInterval(
      () => {
        broadcasts
          .renewClaims([...held], claimLeaseMs)
          .catch((error: unknown) => log.warn("renewing broadcast claims failed", { error }));
      },
      Math.max(50, claimLeaseMs / 3),
    );
    try {
      let next = 0;
      while (next < batch.length && (await launchSlot())) {
        const r = batch[next]!;
        const sending: Promise<void> = sendOne(r).finally(() => {
          inFlight.delete(sending);
          held.delete(r);
        });
        inFlight.add(sending);
        next++;
        while (inFlight.size >= concurrency) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      // Stopping: the recipients never attempted go back to the queue for whoever sends next, at once.
      await broadcasts.release(batch.slice(next));
    } finally {
      clearInterval(renew);
    }
    for (const id of new Set(batch.map((r) => r.broadcastId))) await broadcasts.finishIfDone(id);
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      try {
        if (!(await holdLock())) {
          await nap(Math.min(1_000, lockTtlMs / 3));
          continue;
        }
        const batch = await broadcasts.claim(batchSize, claimLeaseMs, instanceId);
        if (batch.length === 0) await nap(idlePollMs, true);
        else await sendBatch(batch);
      } catch (error) {
        log.error("broadcast job round failed", { error });
        await nap(2_000);
      }
    }
  }

  // A long 429 pause must not let the lock's connection idle out while this instance is still the sender.
  const checkIn = setInterval(
    () => {
      if (holding) holdLock().catch(() => {});
    },
    Math.max(100, lockTtlMs / 3),
  );
  const unsubscribe = broadcasts.onCreated(() => wakeUp?.());
  const running = loop();

  return {
    async stop() {
      stopping = true;
      stopped();
      clearInterval(checkIn);
      await running;
      await (await unsubscribe)();
      await lock.release();
      holding = false;
    },
    wake() {
      wakeUp?.();
    },
  };
}
