import { CHANNELS } from "../cache/channels.ts";
import { log } from "../lib/log.ts";
import { createAccounts } from "./accounts/accounts.ts";
import { createBotStatus } from "./bot/status.ts";
import { createBroadcasts } from "./broadcasts/broadcasts.ts";
import type { ShopDeps } from "./deps.ts";
import { createKeys } from "./keys/keys.ts";
import { createKeyLists } from "./keys/lists.ts";
import { AuthCache, createLicence } from "./licence/licence.ts";
import { createSigning } from "./licence/signing.ts";
import { createDeliveries } from "./orders/deliveries.ts";
import { createOrderLists } from "./orders/lists.ts";
import { createOrders } from "./orders/orders.ts";
import { createRefusedNotifications } from "./orders/refused-notifications.ts";
import { createSales } from "./orders/sales.ts";
import { createBuilds } from "./products/builds.ts";
import { createCatalogue } from "./products/catalogue.ts";
import { createProducts } from "./products/products.ts";
import { createStock } from "./products/stock.ts";
import { createSettings } from "./settings/settings.ts";
import { createAdmins } from "./users/admins.ts";
import { createUserLists } from "./users/lists.ts";
import { createPurchases } from "./users/purchases.ts";
import { createUsers } from "./users/users.ts";

/**
 * The domain, assembled: every adapter (auth API, panel, bot, CLI, jobs) works through these services and nothing
 * else touches the database. One service per entity of the shop, each with its writes and its reads (the panel's
 * lists and figures) together; each folder of src/shop/ is one entity.
 */
export function createShop(deps: ShopDeps) {
  const authCache = new AuthCache();
  const products = { ...createProducts(deps), ...createStock(deps) };
  const deliveries = createDeliveries(deps);
  const refusedNotifications = createRefusedNotifications(deps);
  const shop = {
    deps,
    products,
    builds: createBuilds(deps, products),
    catalogue: createCatalogue(deps),
    keys: { ...createKeys(deps, authCache), ...createKeyLists(deps) },
    licence: createLicence(deps, authCache),
    authCache,
    signing: createSigning(deps),
    orders: {
      ...createOrders(deps, { deliveries, refused: refusedNotifications }),
      ...createOrderLists(deps),
      ...createSales(deps),
    },
    deliveries,
    refusedNotifications,
    users: { ...createUsers(deps), ...createUserLists(deps) },
    purchases: createPurchases(deps),
    admins: createAdmins(deps),
    accounts: createAccounts(deps),
    broadcasts: createBroadcasts(deps),
    settings: createSettings(deps),
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
