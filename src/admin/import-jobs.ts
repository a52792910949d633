import type { DurationDays } from "../lib/durations.ts";
import { log } from "../lib/log.ts";
import { ShopError } from "../shop/errors.ts";
import type { Shop } from "../shop/index.ts";
import type { Actor } from "../shop/keys/events.ts";
import type { ImportResult, KeyLines } from "../shop/keys/keys.ts";

/**
 * Imports bigger than this run in the background with a progress bar: about half a second of inserting on the
 * reference machine. Smaller ones answer at once, as before.
 */
export const BACKGROUND_IMPORT_FROM = 20_000;
/** A finished import's answer waits this long for its page to collect it. */
const KEEP_FINISHED_MS = 10 * 60_000;

export type ImportJob = {
  id: string;
  productId: number;
  days: DurationDays;
  done: number;
  total: number;
  result?: ImportResult;
  error?: string;
  finishedAt?: number;
};

/**
 * Key imports in progress, so a 100 000-line file shows how far it has got instead of a static «Импорт…» for
 * seconds: the import runs in batches and the page polls its job. Kept in this process: one process serves the
 * panel (see auth.ts); after a restart a poll finds no job and says so.
 */
export function createImportJobs(shop: Shop) {
  const jobs = new Map<string, ImportJob>();

  function forgetOld(): void {
    const now = Date.now();
    for (const [id, job] of jobs) if (job.finishedAt && now - job.finishedAt > KEEP_FINISHED_MS) jobs.delete(id);
  }

  function start(productId: number, days: DurationDays, lines: KeyLines, by: Actor): ImportJob {
    forgetOld();
    const job: ImportJob = { id: crypto.randomUUID(), productId, days, done: 0, total: lines.keys.length };
    jobs.set(job.id, job);
    void shop.keys
      .importKeys(productId, days, lines, {
        by,
        onProgress: ({ done, total }) => {
          job.done = done;
          job.total = total;
        },
      })
      .then(
        (result) => {
          job.result = result;
        },
        (error: unknown) => {
          if (error instanceof ShopError) job.error = error.message;
          else {
            log.error("background key import failed", { productId, days, error });
            job.error = "Импорт прервался из-за внутренней ошибки. Часть ключей могла добавиться: проверьте список.";
          }
        },
      )
      .finally(() => {
        job.finishedAt = Date.now();
      });
    return job;
  }

  /** The job of this product, if it is still known; a finished one is handed out once and then forgotten. */
  function collect(productId: number, id: string): ImportJob | null {
    const job = jobs.get(id);
    if (!job || job.productId !== productId) return null;
    if (job.finishedAt) jobs.delete(id);
    return job;
  }

  return { start, collect };
}

export type ImportJobs = ReturnType<typeof createImportJobs>;
