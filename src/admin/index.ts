import { Elysia } from "elysia";
import type { Config } from "../config.ts";
import { pathOf } from "../http/path.ts";
import type { Checkout } from "../payments/checkout.ts";
import type { Shop } from "../shop/index.ts";
import { adminsRoutes } from "./admins.ts";
import { accountRoutes, loginRoutes } from "./auth.ts";
import { broadcastsRoutes } from "./broadcasts.ts";
import { type PanelContext, panelContext } from "./context.ts";
import { dashboardRoutes } from "./dashboard.ts";
import { panelErrorPages } from "./error-pages.ts";
import { loggedInRoutes, type PanelRoutes } from "./guard.ts";
import { keyPageRoutes } from "./key-page.ts";
import { keysRoutes } from "./keys.ts";
import { ordersRoutes } from "./orders.ts";
import { productsRoutes } from "./products.ts";
import { promosRoutes } from "./promos.ts";
import { settingsRoutes } from "./settings.ts";
import { staticFiles } from "./static.ts";
import { usersRoutes } from "./users.ts";

/**
 * The admin panel at BASE_PATH/: mount it inside the Elysia instance whose prefix is BASE_PATH. One request
 * pipeline: the panel's error handler claims every panel URL (error-pages.ts); the entry routes (the dashboard or
 * the login page at BASE_PATH/, the login form, static files) need no session; every other route is added to one
 * instance behind the guard (session + CSRF), one function per tab.
 */
export function adminPanel(shop: Shop, config: Config, checkout: Checkout) {
  const panel = panelContext(shop, config);
  // Build uploads are read as a stream (products.ts): their handler checks the CSRF field that comes in it.
  const routes = loggedInRoutes(panel, {
    streamed: (request) => request.method === "POST" && /\/products\/[^/]+\/build$/.test(pathOf(request.url)),
  });
  const tabs: ((routes: PanelRoutes, panel: PanelContext, checkout: Checkout) => unknown)[] = [
    settingsRoutes,
    broadcastsRoutes,
    adminsRoutes,
    usersRoutes,
    productsRoutes,
    keysRoutes,
    keyPageRoutes,
    ordersRoutes,
    promosRoutes,
    accountRoutes,
  ];
  for (const tab of tabs) tab(routes, panel, checkout);
  return new Elysia()
    .onAfterHandle({ as: "scoped" }, ({ set }) => {
      // The panel is never framed (clickjacking) and never sniffed.
      set.headers["x-frame-options"] = "DENY";
      set.headers["x-content-type-options"] = "nosniff";
      set.headers["referrer-policy"] = "same-origin";
    })
    .use(panelErrorPages(panel))
    .use(staticFiles(panel))
    .use(dashboardRoutes(panel))
    .use(loginRoutes(panel))
    .use(routes);
}
