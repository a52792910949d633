import { createAccounts } from "./accounts/accounts.ts";
import { createLoginLimits } from "./accounts/login-limits.ts";
import { createBotStatus } from "./bot/status.ts";
import { createBroadcasts } from "./broadcasts/broadcasts.ts";
import { createBroadcastDrafts } from "./broadcasts/drafts.ts";
import type { ShopDeps } from "./deps.ts";
import { createHealth } from "./health.ts";
import { createKeys } from "./keys/keys.ts";
import { createKeyLists } from "./keys/lists.ts";
import { createKeySelfService } from "./keys/self-service.ts";
import { createSharingAlerts } from "./keys/sharing.ts";
import { createKeyTimeline } from "./keys/timeline.ts";
import { AuthCache, createLicence } from "./licence/licence.ts";
import { createSigning } from "./licence/signing.ts";
import { createLimits } from "./limits.ts";
import { createAttention } from "./orders/attention.ts";
import { createDeliveries } from "./orders/deliveries.ts";
import { createOrderLists } from "./orders/lists.ts";
import { createOrders } from "./orders/orders.ts";
import { createOrderPayments } from "./orders/payments.ts";
import { createRefusedNotifications } from "./orders/refused-notifications.ts";
import { createRenewals } from "./orders/renewals.ts";
import { createSales } from "./orders/sales.ts";
import { createWaitingOrders } from "./orders/waiting.ts";
import { createBuilds } from "./products/builds.ts";
import { createCatalogue } from "./products/catalogue.ts";
import { createProducts } from "./products/products.ts";
import { createStock } from "./products/stock.ts";
import { createCodeEntries } from "./promos/entry.ts";
import { createPromos } from "./promos/promos.ts";
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
  const accounts = createAccounts(deps);
  const botStatus = createBotStatus(deps);
  const keys = { ...createKeys(deps, authCache), ...createKeyLists(deps), ...createKeyTimeline(deps) };
  const settings = createSettings(deps);
  const sharing = createSharingAlerts(deps, { keys, settings });
  const shop = {
    /** The stores themselves: for the shop's own wiring (changes.ts) and tests, never for adapters. */
    deps,
    products,
    builds: createBuilds(deps, products),
    catalogue: createCatalogue(deps),
    keys,
    /** What a buyer does to their own key in the bot: «Сбросить привязку» (renewals are orders). */
    buyerKeys: createKeySelfService(deps, { keys, settings }),
    /** Sharing alerts: raised from the licence's HWID mismatches, decided by the admins in the bot. */
    sharing,
    licence: createLicence(deps, authCache, {
      onMismatches: async (keyIds) => {
        await sharing.check(keyIds);
      },
    }),
    authCache,
    signing: createSigning(deps),
    orders: {
      ...createOrders(deps),
      ...createOrderPayments(deps, { deliveries, announce: keys.announce }),
      renewals: createRenewals(deps),
      ...createWaitingOrders(deps, { deliveries }),
      ...createAttention(deps, { refused: refusedNotifications }),
      ...createOrderLists(deps),
      ...createSales(deps),
    },
    deliveries,
    refusedNotifications,
    promos: { ...createPromos(deps), entries: createCodeEntries(deps) },
    users: { ...createUsers(deps), ...createUserLists(deps) },
    purchases: createPurchases(deps),
    admins: createAdmins(deps),
    accounts: { ...accounts, ...createLoginLimits(deps, accounts) },
    broadcasts: { ...createBroadcasts(deps), drafts: createBroadcastDrafts(deps) },
    settings,
    botStatus,
    // What adapters need of the stores, by name: limits counted across processes, and how the parts answer.
    limits: createLimits(deps),
    health: createHealth(deps, botStatus),
  };
  return shop;
}

export type Shop = ReturnType<typeof createShop>;
