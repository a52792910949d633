import { CHANNELS, FORGET_ALL } from "../cache/channels.ts";
import { log } from "../lib/log.ts";
import type { Shop } from "./index.ts";

/**
 * Listens for changes announced by other processes (and this one) so in-memory copies stay true: cached auth
 * answers, settings, the admin list, the signing keys. Announcements travel through Redis; while it is down they
 * are lost, so the settings, the admin list and the signing key ids are also re-read every `reloadEveryMs` (three
 * small selects): a switch flipped or a key rotated in another process then reaches this one within that time.
 * Returns a function that stops all of it.
 */
export async function followChanges(
  shop: Shop,
  options: { reloadEveryMs?: number } = {},
): Promise<() => Promise<void>> {
  const { cache } = shop.deps;
  const stops = await Promise.all([
    cache.subscribe(CHANNELS.keys, (message) => {
      if (message === FORGET_ALL) {
        shop.authCache.clear();
        return;
      }
      try {
        const keys = JSON.parse(message) as unknown;
        if (Array.isArray(keys)) shop.authCache.forget(keys.filter((k): k is string => typeof k === "string"));
      } catch {
        shop.authCache.clear();
      }
    }),
    cache.subscribe(CHANNELS.settings, () => {
      shop.settings.load().catch((error) => log.warn("settings reload failed", { error }));
    }),
    cache.subscribe(CHANNELS.admins, () => {
      shop.admins.reload().catch((error) => log.warn("admins reload failed", { error }));
    }),
    cache.subscribe(CHANNELS.signingKeys, () => {
      shop.signing.refresh().catch((error) => log.warn("signing keys reload failed", { error }));
    }),
  ]);
  let reloading: Promise<unknown> | null = null;
  const reloads = setInterval(() => {
    if (reloading) return;
    reloading = Promise.all([shop.settings.load(), shop.admins.reload(), shop.signing.refresh()])
      .catch((error) => log.warn("periodic reload of settings, admins and signing keys failed", { error }))
      .finally(() => {
        reloading = null;
      });
  }, options.reloadEveryMs ?? 20_000);
  // A process that forgets to stop following must still be able to exit.
  reloads.unref();
  return async () => {
    clearInterval(reloads);
    await reloading;
    for (const stop of stops) await stop();
  };
}
