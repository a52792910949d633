import { log } from "../lib/log.ts";
import type { Shop } from "../shop/index.ts";

export type ExpiryJobOptions = {
  /** How often unpaid orders past their reservation are expired (their keys go back on sale). */
  everyMs?: number;
  /** After stock changes, how soon orders paid while out of stock are looked at again. */
  restockDelayMs?: number;
};

export type ExpiryJob = { stop: () => Promise<void> };

/**
 * Keeps reservations honest: unpaid orders past config.reservationMinutes expire and their keys return to stock.
 * It also serves orders paid while nothing was in stock (`paid_no_stock`) as soon as keys are added, so the admin's
 * only job is to add keys. And it folds the stock counts' deltas that sales leave behind.
 */
export async function startExpiryJob(shop: Shop, options: ExpiryJobOptions = {}): Promise<ExpiryJob> {
  const everyMs = options.everyMs ?? 15_000;
  const restockDelayMs = options.restockDelayMs ?? 500;
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let restockTimer: ReturnType<typeof setTimeout> | null = null;

  async function tick(): Promise<void> {
    try {
      // A large backlog (the job was down for a while) is worked off in batches.
      while (!stopped && (await shop.orders.expireDue()) >= 500) {}
      if (!stopped) await shop.orders.fulfilWaiting();
      // Sales and releases leave stock-count deltas behind: fold them so the panel's reads stay a few rows.
      if (!stopped) await shop.keys.compactCounts();
    } catch (error) {
      log.error("expiry job failed; trying again next round", { error });
    }
  }

  function runTick(): void {
    running = running.then(tick);
  }

  const timer = setInterval(runTick, everyMs);
  const unsubscribe = await shop.catalogue.onChange(() => {
    if (stopped || restockTimer) return;
    restockTimer = setTimeout(() => {
      restockTimer = null;
      if (!stopped) {
        running = running.then(() =>
          shop.orders
            .fulfilWaiting()
            .then(() => {})
            .catch((error) => log.error("serving paid_no_stock orders failed", { error })),
        );
      }
    }, restockDelayMs);
  });
  runTick();
  log.info("expiry job started", { everyMs, reservationMinutes: shop.orders.reservationMinutes });

  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      if (restockTimer) clearTimeout(restockTimer);
      await unsubscribe();
      await running;
    },
  };
}
