import { log } from "../lib/log.ts";
import type { Shop } from "../shop/index.ts";
import { type Messenger, MessengerError } from "../shop/messenger.ts";
import type { DeliveryWork } from "../shop/orders/deliveries.ts";
import { alertTexts } from "../shop/texts/admins.ts";
import { deliveryText, renewedText } from "../shop/texts/buyers.ts";
import { alertAdmins } from "../shop/users/admins.ts";

export type DeliveryJobOptions = {
  /** Deliveries sent at the same time. */
  concurrency?: number;
  /** How often to look for due work when nothing wakes the job (retries fall due; another process queued work). */
  pollMs?: number;
  /**
   * How long a claim holds a delivery. Longer than sendTimeoutMs, so a slow send is never claimed twice; a send
   * that timed out is also retried no sooner than this, in case Telegram acts on it late.
   */
  leaseMs?: number;
  /** A send not answered within this is abandoned (its request aborted) and retried later. */
  sendTimeoutMs?: number;
  /** Failed sends before giving up and asking an admin (rate limits and a missing token do not count). */
  maxAttempts?: number;
  /** First retry delay; doubles per attempt up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** How often to look for buyers who blocked the bot and have since written to it again. */
  requeueBlockedEveryMs?: number;
};

export type DeliveryJob = { stop: () => Promise<void> };

const DEFAULTS: Required<DeliveryJobOptions> = {
  concurrency: 8,
  pollMs: 5_000,
  leaseMs: 120_000,
  sendTimeoutMs: 90_000,
  maxAttempts: 25,
  backoffMs: 5_000,
  maxBackoffMs: 3_600_000,
  requeueBlockedEveryMs: 60_000,
};

class SendTimeout extends Error {}

/**
 * Runs `work` with a signal that is aborted after `ms`: the request in flight is closed rather than left to finish
 * on its own while the delivery is already being retried (the buyer would get it twice).
 */
function withTimeout<T>(work: (signal: AbortSignal) => Promise<T>, ms: number): Promise<T> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new SendTimeout(`no answer from Telegram in ${ms} ms`));
      controller.abort();
    }, ms);
  });
  return Promise.race([work(controller.signal), timeout]).finally(() => clearTimeout(timer));
}

/** Exponential, with ±20 % jitter so retries of many deliveries do not arrive at Telegram together. */
export function backoff(attempt: number, baseMs: number, maxMs: number): number {
  const ms = Math.min(baseMs * 2 ** Math.max(attempt - 1, 0), maxMs);
  return Math.round(ms * (0.8 + Math.random() * 0.4));
}

/**
 * Sends purchases from the outbox: the product's zip with the key in the caption (shop/texts/buyers.ts), or the text
 * alone when the product has no build. Work is claimed with SKIP LOCKED and a lease, so several processes can run this
 * job, and a delivery whose process died is picked up again; a restart loses nothing because the outbox is the
 * database.
 */
export function startDeliveryJob(shop: Shop, messenger: Messenger, options: DeliveryJobOptions = {}): DeliveryJob {
  const o = { ...DEFAULTS, ...options };
  const inFlight = new Set<Promise<void>>();
  // One upload per build at a time: concurrent sales of a product without a file_id wait for the first upload and
  // then send Telegram's file_id instead of uploading the same zip again.
  const uploads = new Map<string, Promise<string | null>>();
  // file_ids learned by this process, for deliveries claimed before the upload that taught it was recorded.
  const learned = new Map<string, string>();
  let stopped = false;
  let backlog = false;
  let signalled = false;
  let wakeUp: (() => void) | null = null;
  let nextRequeue = Date.now() + o.requeueBlockedEveryMs;

  function signal(): void {
    signalled = true;
    wakeUp?.();
  }

  // A retry due sooner than the next poll wakes the loop on time.
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let retryAt = Number.POSITIVE_INFINITY;
  function wakeIn(ms: number): void {
    const at = Date.now() + ms;
    if (stopped || ms >= o.pollMs || at >= retryAt) return;
    clearTimeout(retryTimer);
    retryAt = at;
    retryTimer = setTimeout(() => {
      retryAt = Number.POSITIVE_INFINITY;
      signal();
    }, ms + 5);
  }

  async function retryIn(work: DeliveryWork, ms: number, error: string, countAttempt: boolean): Promise<void> {
    await shop.deliveries.reschedule(work, ms, error, { countAttempt });
    wakeIn(ms);
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

  /**
   * Uploads the zip with this buyer's caption. The upload is registered before the first await, so deliveries of
   * the same build starting at the same moment find it and wait for its file_id instead of uploading again.
   */
  function upload(
    work: DeliveryWork,
    build: NonNullable<DeliveryWork["build"]>,
    caption: string,
    signal: AbortSignal,
  ): Promise<{ document: boolean } | "missing"> {
    const id = `${work.productId}:${build.sha256}`;
    const result = (async () => {
      // This process's copy, fetched from the database if another server took the upload.
      const path = await shop.builds.localCopy(build);
      if (path === null) return { document: false, fileId: null, missing: true };
      const { fileId } = await messenger.sendDocument(work.userId, { path, filename: build.name }, caption, { signal });
      if (fileId) {
        learned.set(id, fileId);
        await shop.products.rememberBuildFileId(work.productId, build.sha256, fileId);
      }
      return { document: true, fileId };
    })();
    if (!uploads.has(id)) {
      const fileId = result.then((r) => r.fileId).catch(() => null);
      uploads.set(id, fileId);
      fileId.finally(() => uploads.delete(id));
    }
    return result.then((r) => ("missing" in r ? "missing" : { document: r.document }));
  }

  /**
   * The claimed build's file is gone. Usually the admin replaced the build after this delivery was claimed (the old
   * file is removed once the new one is recorded): send the current build then. Only with no usable build left does
   * the buyer get the key alone, since they paid for the key above all, and the log says loudly to upload the zip.
   */
  async function sendWithoutClaimedFile(
    work: DeliveryWork,
    key: string,
    caption: string,
    signal: AbortSignal,
    rereadBuild: boolean,
  ) {
    const claimed = work.build;
    const current = rereadBuild ? ((await shop.products.byId(work.productId))?.build ?? null) : null;
    if (current && current.path !== claimed?.path && (current.fileId || (await shop.builds.localCopy(current)))) {
      log.info("build replaced during delivery: sending the current one", {
        productId: work.productId,
        orderId: work.orderId,
      });
      const { path, name, sha256, fileId } = current;
      return await send({ ...work, build: { path, name, sha256, fileId } }, key, signal, false);
    }
    log.error(
      "build is missing (not on disk, not in the database): key sent without the zip; upload the build again in the panel",
      {
        productId: work.productId,
        path: claimed?.path,
        orderId: work.orderId,
      },
    );
    await messenger.sendText(work.userId, caption, { signal });
    return { document: false };
  }

  /**
   * Sends one purchase; returns whether the zip went with it. Throws MessengerError (or other) on failure. A renewal
   * is a message alone: the buyer has the key and its build already.
   */
  async function send(
    work: DeliveryWork,
    key: string,
    signal: AbortSignal,
    rereadBuild = true,
  ): Promise<{ document: boolean }> {
    if (work.renewal) {
      await messenger.sendText(work.userId, renewedText(key, work.productName, work.days, work.renewal), { signal });
      return { document: false };
    }
    const caption = deliveryText(key, work.productName, work.days);
    const build = work.build;
    if (!build) {
      await messenger.sendText(work.userId, caption, { signal });
      return { document: false };
    }
    const id = `${work.productId}:${build.sha256}`;
    const known = learned.get(id) ?? build.fileId;
    if (known) {
      try {
        await messenger.sendDocument(work.userId, { fileId: known }, caption, { signal });
        return { document: true };
      } catch (error) {
        // 400 to a file_id: Telegram no longer accepts it (a new bot token is another bot). Upload the zip again.
        if (!(error instanceof MessengerError) || error.kind !== "failed" || !/\b400\b/.test(error.message))
          throw error;
        learned.delete(id);
        log.warn("build file_id refused, uploading the zip again", { productId: work.productId, error: error.message });
      }
    }
    const pending = uploads.get(id);
    if (pending) {
      const fileId = await pending;
      if (fileId) {
        await messenger.sendDocument(work.userId, { fileId }, caption, { signal });
        return { document: true };
      }
      // That upload failed (its buyer may have blocked the bot): this delivery uploads for itself.
    }
    const sent = await upload(work, build, caption, signal);
    if (sent !== "missing") return sent;
    return await sendWithoutClaimedFile(work, key, caption, signal, rereadBuild);
  }

  /** Marks the delivery sent, retrying a database hiccup: the buyer already has the message. */
  async function recordSent(work: DeliveryWork, detail: { document: boolean }): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await shop.deliveries.markSent(work, detail);
        return;
      } catch (error) {
        if (attempt >= 5) throw error;
        await Bun.sleep(500 * attempt);
      }
    }
  }

  function tellAdmins(name: string, text: () => Promise<string>): void {
    text()
      .then((t) => alertAdmins(shop.admins, messenger, t))
      .catch((error) => log.warn(`${name} failed`, { error: (error as Error).message }));
  }

  async function deliver(work: DeliveryWork): Promise<void> {
    const context = { deliveryId: work.id, orderId: work.orderId, userId: work.userId, attempt: work.attempts };
    if (!work.key) {
      log.error("paid order has no sold key: cannot deliver", context);
      await shop.deliveries.markFailed(work, "the order has no sold key");
      return;
    }
    let failure: MessengerError;
    let timedOut = false;
    try {
      const key = work.key;
      const detail = await withTimeout((signal) => send(work, key, signal), o.sendTimeoutMs);
      await recordSent(work, detail);
      log.info("order delivered", { ...context, document: detail.document });
      return;
    } catch (error) {
      timedOut = error instanceof SendTimeout;
      failure = error instanceof MessengerError ? error : new MessengerError("failed", (error as Error).message);
    }
    const username = async () => (await shop.users.byId(work.userId))?.username ?? null;
    switch (failure.kind) {
      case "blocked":
        log.warn("delivery stopped: the buyer blocked the bot", context);
        await shop.deliveries.markBlocked(work, failure.message);
        tellAdmins("blocked delivery alert", async () => alertTexts.deliveryBlocked(work, await username()));
        return;
      case "rate_limited":
        await retryIn(work, Math.max(failure.retryAfterS, 1) * 1000, failure.message, false);
        return;
      case "not_configured":
        log.warn("delivery waiting: the bot token is not set in the panel", context);
        await retryIn(
          work,
          Math.min(backoff(work.attempts, o.backoffMs, o.maxBackoffMs), 300_000),
          failure.message,
          false,
        );
        return;
      case "failed":
        if (work.attempts >= o.maxAttempts) {
          log.error("delivery failed for good: an admin must deliver by hand", { ...context, error: failure.message });
          await shop.deliveries.markFailed(work, failure.message);
          tellAdmins("failed delivery alert", async () =>
            alertTexts.deliveryFailed(work, await username(), failure.message),
          );
          return;
        }
        log.warn("delivery failed, will retry", { ...context, error: failure.message });
        // A request that timed out is aborted, but Telegram may have received it whole and still act on it: retry
        // no sooner than a claim would have expired, so a slow send and its retry never overlap.
        await retryIn(
          work,
          Math.max(backoff(work.attempts, o.backoffMs, o.maxBackoffMs), timedOut ? o.leaseMs : 0),
          failure.message,
          true,
        );
        return;
    }
  }

  function start(work: DeliveryWork): void {
    const p: Promise<void> = deliver(work)
      .catch((error) =>
        log.error("delivery crashed; it is retried when its lease ends", { deliveryId: work.id, error }),
      )
      .finally(() => {
        inFlight.delete(p);
        if (backlog) signal();
      });
    inFlight.add(p);
  }

  async function loop(): Promise<void> {
    while (!stopped) {
      const free = o.concurrency - inFlight.size;
      if (free > 0) {
        try {
          const batch = await shop.deliveries.claimDue(free, o.leaseMs);
          backlog = batch.length === free;
          for (const work of batch) start(work);
        } catch (error) {
          log.error("delivery job: could not claim work", { error });
        }
      }
      if (Date.now() >= nextRequeue) {
        nextRequeue = Date.now() + o.requeueBlockedEveryMs;
        await shop.deliveries
          .requeueUnblocked()
          .then((n) => n > 0 && log.info("deliveries resumed for buyers who unblocked the bot", { count: n }))
          .catch((error) => log.error("delivery job: requeue of unblocked buyers failed", { error }));
      }
      if (stopped) break;
      if (backlog && inFlight.size < o.concurrency) continue;
      await sleep(o.pollMs);
    }
  }

  const stopListening = shop.deliveries.onQueued(signal);
  const running = loop();
  log.info("delivery job started", { concurrency: o.concurrency });

  return {
    stop: async () => {
      stopped = true;
      clearTimeout(retryTimer);
      stopListening();
      signal();
      await running;
      await Promise.all([...inFlight]);
    },
  };
}
