import { Elysia } from "elysia";
import * as v from "valibot";
import { adminPanel } from "./admin/index.ts";
import { anypayNotifications } from "./api/anypay.ts";
import { authApi, authBunRoutes, licenceCalls, publicKeyApi } from "./api/auth.ts";
import { createTelegramMessenger } from "./bot/messenger.ts";
import { type BotRuntime, createBotRuntime } from "./bot/runtime.ts";
import type { Cache } from "./cache/cache.ts";
import type { Config } from "./config.ts";
import type { Sql } from "./db/client.ts";
import { errorHandling } from "./http/errors.ts";
import { flushRequestTally, requestLog } from "./http/request-log.ts";
import { startBroadcastJob } from "./jobs/broadcast.ts";
import { startDeliveryJob } from "./jobs/delivery.ts";
import { startExpiryJob } from "./jobs/expiry.ts";
import { startSharingAlertJob } from "./jobs/sharing-alerts.ts";
import { log } from "./lib/log.ts";
import { type Checkout, createCheckout } from "./payments/checkout.ts";
import { followChanges } from "./shop/changes.ts";
import { createShop, type Shop } from "./shop/index.ts";

export type HttpExtras = {
  /** The checkout; tests pass one wired to their fake Bot API. */
  checkout?: Checkout;
  /** True once the process is leaving (SIGTERM): Caddy's probe then hears 503 and sends new calls elsewhere. */
  leaving?: () => boolean;
  /** Handles Telegram's webhook calls (webhook mode), mounted at the path of BOT_WEBHOOK_URL. */
  telegramWebhook?: (request: Request) => Promise<Response>;
};

/** Every HTTP route of the shop, under BASE_PATH. Tests call `.handle()` on it; the server listens with it. */
export function buildHttpApp(shop: Shop, config: Config, extras: HttpExtras = {}) {
  const checkout = extras.checkout ?? createCheckout({ shop, messenger: productionMessenger(shop, config), config });
  const routes = new Elysia({ prefix: config.basePath })
    .get(
      "/healthz",
      async ({ query, set }) => {
        const { postgres, redis, bot } = await shop.health.check();
        // A process on its way out (SIGTERM) still answers what it is sent, but tells Caddy to send nothing more.
        const stopping = extras.leaving?.() === true;
        if (stopping && query.scope === "process") set.status = 503;
        // Redis down degrades the shop (no shared cache or limits) but does not make it unhealthy; neither does the
        // bot's state (an invalid token is the owner's to fix in the panel), which is reported for monitoring.
        // `scope=process` is Caddy's question when it balances several processes: does this one serve? A lost
        // database is every process's loss, and each still answers the loaders it has in memory.
        if (!postgres && query.scope !== "process") set.status = 503;
        return {
          ok: postgres,
          postgres: postgres ? "ok" : "down",
          redis,
          bot,
          ...(stopping ? { stopping: true } : {}),
        };
      },
      { query: v.object({ scope: v.optional(v.picklist(["process"])) }) },
    )
    .use(publicKeyApi(shop))
    .use(anypayNotifications(checkout.anypay, config))
    .use(adminPanel(shop, config, checkout));
  // The loaders' calls come first, ahead of the hooks below (a route gets only the hooks registered before it): the
  // auth API answers its own errors (signed) and tallies itself, and its thousands of calls a second would spend a
  // hook call and a setImmediate each for nothing. Bun's router hands them to it directly (authBunRoutes).
  const calls = licenceCalls(shop, config);
  const app = new Elysia({ serve: { routes: authBunRoutes(calls, config.basePath) } })
    .use(new Elysia({ prefix: config.basePath }).use(authApi(calls)))
    .use(errorHandling)
    .use(requestLog)
    .use(routes);
  const webhook = extras.telegramWebhook;
  if (webhook && config.botWebhookUrl) {
    // parse "none": the runtime reads the raw body itself (validating it as an update and answering 400 if not).
    app.post(decodeURIComponent(new URL(config.botWebhookUrl).pathname), ({ request }) => webhook(request), {
      parse: "none",
    });
  }
  return app;
}

/** Telegram as the shop's jobs and checkout reach it: the Bot API with the token currently in the settings. */
function productionMessenger(shop: Shop, config: Config) {
  return createTelegramMessenger({
    telegramApiUrl: config.telegramApiUrl,
    token: async () => (await shop.settings.get()).botToken,
  });
}

export type RunningShop = {
  shop: Shop;
  checkout: Checkout;
  bot: BotRuntime;
  url: string;
  /**
   * Starts leaving: requests are still served, but Caddy's probe (healthz?scope=process) answers 503, so the balancer
   * stops sending new ones here before `stop()` closes the listener (docs/operator.md#several-app-processes).
   */
  leave: () => void;
  stop: () => Promise<void>;
};

/** How long `stop()` lets requests in flight finish before it cuts their connections. */
export const IN_FLIGHT_LIMIT_MS = 10_000;

/**
 * Starts the shop on already-connected stores: domain, HTTP server, bot, jobs, change listeners. The caller owns
 * the stores and closes them after `stop()`.
 */
export async function runShop(config: Config, stores: { sql: Sql; cache: Cache }): Promise<RunningShop> {
  const shop = createShop({ ...stores, config });
  await shop.settings.seedFromEnvironment();
  const stopFollowing = await followChanges(shop);
  // One messenger for every job: deliveries, broadcasts and admin alerts share the token and its rate limits.
  const messenger = productionMessenger(shop, config);
  const checkout = createCheckout({ shop, messenger, config });
  const bot = createBotRuntime({ shop, checkout, config });
  let leaving = false;
  const app = buildHttpApp(shop, config, {
    checkout,
    telegramWebhook: (request) => bot.handleWebhook(request),
    leaving: () => leaving,
  });
  app.listen({
    hostname: config.host,
    port: config.port,
    // A build upload is at most 50 MB; a little more for the multipart envelope.
    maxRequestBodySize: 52 * 1024 * 1024,
  });
  const server = app.server!;
  const url = `http://${server.hostname}:${server.port}${encodeURI(config.basePath)}/`;
  log.info("http listening", { url });
  // The bot starts after the HTTP server, so webhook calls find their route.
  await bot.start();
  // Builds recorded before they were kept in the database go there now, for the other servers (docs/scaling.md).
  void shop.builds
    .adoptLocalFiles()
    .catch((error: unknown) => log.error("builds on disk could not be adopted into the database", { error }));
  const deliveryJob = startDeliveryJob(shop, messenger);
  const expiryJob = await startExpiryJob(shop);
  const broadcastJob = startBroadcastJob({ broadcasts: shop.broadcasts, messenger });
  const sharingAlertJob = startSharingAlertJob(shop, messenger);
  return {
    shop,
    checkout,
    bot,
    url,
    leave: () => {
      leaving = true;
    },
    stop: async () => {
      leaving = true;
      log.info("closing the port; requests in flight may finish", { limitMs: IN_FLIGHT_LIMIT_MS });
      // Stop taking new connections and let requests in flight finish, for a while: a client that keeps one open
      // (a stalled upload) must not hold the restart up until systemd kills the process.
      const finished = app.stop(false).then(() => true);
      const timer = Promise.withResolvers<boolean>();
      const timeout = setTimeout(() => timer.resolve(false), IN_FLIGHT_LIMIT_MS);
      if (!(await Promise.race([finished, timer.promise]))) {
        log.warn("requests still in flight after the limit: their connections are closed", {
          limitMs: IN_FLIGHT_LIMIT_MS,
        });
        await server.stop(true);
      }
      clearTimeout(timeout);
      // The auth API's calls since the last tally line would otherwise go unlogged, and its last-seen stamps unwritten.
      flushRequestTally();
      await shop.licence.flush();
      await Promise.all([
        deliveryJob.stop(),
        expiryJob.stop(),
        broadcastJob.stop(),
        sharingAlertJob.stop(),
        checkout.idle(),
      ]);
      await bot.stop();
      await stopFollowing();
    },
  };
}
