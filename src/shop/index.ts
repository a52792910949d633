import { CHANNELS } from "../cache/channels.ts";
import { log } from "../lib/log.ts";
import { createAccounts } from "./accounts.ts";
import { createAdmins } from "./admins.ts";
import { createBotStatus } from "./bot-status.ts";
import { createBroadcasts } from "./broadcasts.ts";
import { createBuilds } from "./builds.ts";
import { createCatalogue } from "./catalogue.ts";
import { createDeliveries } from "./deliveries.ts";
import type { ShopDeps } from "./deps.ts";
import { createKeys } from "./keys.ts";
import { AuthCache, createLicence } from "./licence.ts";
import { createOrders } from "./orders.ts";
import { createProducts } from "./products.ts";
import { createPurchases } from "./purchases.ts";
import { createRefusedNotifications } from "./refused-notifications.ts";
import { createSettings } from "./settings.ts";
import { createSigning } from "./signing.ts";
import { createUsers } from "./users.ts";

/**
 * The domain, assembled: every adapter (auth API, panel, bot, CLI, jobs) works through these services and nothing
 * else touches the database.
 */
export function createShop(deps: ShopDeps) {
  const authCache = new AuthCache();
  const products = createProducts(deps);
  const deliveries = createDeliveries(deps);
  const refusedNotifications = createRefusedNotifications(deps);
  const shop = {
    deps,
    authCache,
    products,
    builds: createBuilds(deps, products),
    keys: createKeys(deps, authCache),
    licence: createLicence(deps, authCache),
    signing: createSigning(deps),
    settings: createSettings(deps),
    admins: createAdmins(deps),
    accounts: createAccounts(deps),
    users: createUsers(deps),
    orders: createOrders(deps, { deliveries, refused: refusedNotifications }),
    refusedNotifications,
    deliveries,
    catalogue: createCatalogue(deps),
    purchases: createPurchases(deps),
    broadcasts: createBroadcasts(deps),
    botStatus: createBotStatus(deps),
  };
  return shop;
}

export type Shop = ReturnType<typeof createShop>;

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
