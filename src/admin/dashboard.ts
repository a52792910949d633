import { type Cookie, Elysia } from "elysia";
import { DashboardPage } from "../../templates/dashboard.tsx";
import { needsOwner } from "../shop/orders/attention.ts";
import { renderLoginPage } from "./auth.ts";
import type { PanelContext } from "./context.ts";
import { viewFor } from "./guard.ts";
import { queryText, render } from "./respond.ts";
import {
  csrfToken,
  needsRenewal,
  type PanelJwt,
  readSession,
  SESSION_COOKIE,
  sessionJwt,
  startSession,
} from "./session.ts";

/**
 * BASE_PATH/ itself: the dashboard for a logged-in owner, the login page for anybody else (both "" and "/", since
 * BASE_PATH is reachable with and without the trailing slash). Outside the guard, which would send a visitor
 * without a session here.
 */
export function dashboardRoutes(panel: PanelContext) {
  const { shop } = panel;

  const home = async (ctx: {
    cookie: Record<string, Cookie<unknown>>;
    query: Record<string, unknown>;
    panelJwt: unknown;
  }) => {
    const signer = ctx.panelJwt as PanelJwt;
    const session = await readSession(panel, signer, ctx.cookie[SESSION_COOKIE]!.value);
    if (!session) return renderLoginPage(panel, ctx.cookie, queryText(ctx.query, "next"));
    if (needsRenewal(session.claims)) {
      await startSession(panel, signer, ctx.cookie[SESSION_COOKIE]!, session.account, session.claims);
    }
    const [sales, revenue, stock, attention, recent, settings] = await Promise.all([
      shop.orders.sales(),
      shop.orders.revenue30(),
      shop.products.stock(),
      shop.orders.attention(),
      shop.orders.list({ limit: 10 }),
      shop.settings.get(),
    ]);
    const csrf = csrfToken(panel, session.claims.sid);
    const view = viewFor(panel, session.account.login, csrf, needsOwner(attention));
    return render(
      DashboardPage({
        view,
        sales,
        revenue,
        stock,
        lowStock: shop.products.lowStock(stock),
        attention,
        recent: recent.rows,
        settings,
      }),
    );
  };

  return new Elysia().use(sessionJwt(panel)).get("", home).get("/", home);
}
