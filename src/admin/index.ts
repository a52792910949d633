import { Elysia } from "elysia";
import type { Config } from "../config.ts";
import type { Shop } from "../shop/index.ts";
import { adminsController } from "./admins.ts";
import { authController } from "./auth.ts";
import { broadcastRoutes } from "./broadcasts.tsx";
import { panelContext } from "./context.ts";
import { dashboardController } from "./dashboard.ts";
import { panelErrorPages } from "./error-pages.ts";
import { keysController } from "./keys.ts";
import { ordersController } from "./orders.ts";
import { productsController } from "./products.ts";
import { settingsController } from "./settings.ts";
import { staticFiles } from "./static.ts";
import { usersController } from "./users.ts";

// For other adapters' panel pages (the bot's broadcast form): the guard, and how the panel answers.
export { errorView, type PanelRequest, panelGuard } from "./guard.ts";
export { field, file, guarded, html, isHtmx, isPartial, redirect, render } from "./respond.ts";

/**
 * The admin panel at BASE_PATH/: mount it inside the Elysia instance whose prefix is BASE_PATH. One controller per
 * tab; every route but login and the static files sits behind panelGuard (session + CSRF). Errors no handler
 * answered (unknown URLs, unreadable bodies, bugs) come back as the panel's HTML, never as the API's JSON.
 */
export function adminPanel(shop: Shop, config: Config) {
  const panel = panelContext(shop, config);
  return new Elysia()
    .onAfterHandle({ as: "scoped" }, ({ set }) => {
      // The panel is never framed (clickjacking) and never sniffed.
      set.headers["x-frame-options"] = "DENY";
      set.headers["x-content-type-options"] = "nosniff";
      set.headers["referrer-policy"] = "same-origin";
    })
    .use(panelErrorPages(panel))
    .use(staticFiles(panel))
    .use(dashboardController(shop, config))
    .use(authController(shop, config))
    .use(settingsController(shop, config))
    .use(adminsController(shop, config))
    .use(usersController(shop, config))
    .use(productsController(shop, config))
    .use(keysController(shop, config))
    .use(ordersController(shop, config))
    .use(broadcastRoutes(shop, config));
}
