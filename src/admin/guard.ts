import { type Cookie, Elysia } from "elysia";
import { ErrorFragment, ErrorPage } from "../../templates/layout.tsx";
import type { View } from "../../templates/view.ts";
import type { Config } from "../config.ts";
import { log } from "../lib/log.ts";
import type { PanelAccount } from "../shop/accounts.ts";
import type { Shop } from "../shop/index.ts";
import { type PanelContext, panelContext } from "./context.ts";
import { isHtmx, isPartial, redirect, render } from "./respond.ts";
import {
  clearCookie,
  csrfFromRequest,
  csrfToken,
  csrfValid,
  needsRenewal,
  type PanelJwt,
  readSession,
  SESSION_COOKIE,
  type SessionClaims,
  sessionJwt,
  startSession,
} from "./session.ts";

/** What a guarded handler gets as `panel`: who is logged in, and what templates need to render for them. */
export type PanelRequest = {
  account: PanelAccount;
  claims: SessionClaims;
  /** Pass to every template (Layout, forms): base path, CSRF token, login, static URLs. */
  view: View;
  context: PanelContext;
};

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export function viewFor(panel: PanelContext, login: string, csrf: string, needsOwner?: number): View {
  return { base: panel.base, csrf, login, assets: panel.assets, publicBase: panel.publicBase, needsOwner };
}

/**
 * The badge count for a request that may render a whole page (anything but an htmx fragment). A failure only
 * loses the badge: the page itself must still render.
 */
export async function ownerBadge(panel: PanelContext, request: Request): Promise<number | undefined> {
  if (isPartial(request)) return undefined;
  try {
    return await panel.shop.orders.needingOwner();
  } catch (error) {
    log.warn("panel: counting orders that need attention failed", { error });
    return undefined;
  }
}

/** Where a visitor without a session is sent: the login page, remembering the page they wanted. */
export function loginRedirect(panel: PanelContext, request: Request): Response {
  const url = new URL(request.url);
  const wanted = `${url.pathname}${url.search}`;
  const login = request.method === "GET" ? `${panel.base}/?next=${encodeURIComponent(wanted)}` : `${panel.base}/`;
  // htmx must reload the page: <body> of a logged-out page has no session token.
  return redirect(request, login, { full: true });
}

/**
 * The panel's session and CSRF check, as a plugin any panel route can `.use()`: it resolves `panel` (a
 * PanelRequest) for handlers, sends visitors without a valid session to the login page (303, or HX-Redirect for
 * htmx), and refuses every POST/PUT/PATCH/DELETE whose CSRF token (header X-CSRF-Token or form field _csrf) is
 * missing or not this session's (403).
 */
export function panelGuard(shop: Shop, config: Config) {
  const panel = panelContext(shop, config);
  // Unnamed on purpose: every controller that uses it must get its hooks, never a deduplicated no-op.
  return new Elysia()
    .use(sessionJwt(panel))
    .resolve({ as: "scoped" }, async ({ request, cookie, body, panelJwt, status }) => {
      const sessionCookie = cookie[SESSION_COOKIE] as Cookie<unknown>;
      let session: Awaited<ReturnType<typeof readSession>>;
      try {
        session = await readSession(panel, panelJwt as PanelJwt, sessionCookie.value);
      } catch (error) {
        log.error("panel session check failed", { error });
        return status(
          503,
          await render(ErrorFragment({ status: 503, message: "База данных недоступна, попробуйте позже." }), 503),
        );
      }
      if (!session) {
        if (sessionCookie.value !== undefined) clearCookie(panel, sessionCookie);
        const to = loginRedirect(panel, request);
        return status(to.status as 200, to);
      }
      const csrf = csrfToken(panel, session.claims.sid);
      const view = viewFor(panel, session.account.login, csrf, await ownerBadge(panel, request));
      if (!SAFE_METHODS.has(request.method) && !csrfValid(panel, session.claims.sid, csrfFromRequest(request, body))) {
        log.warn("panel request without a valid CSRF token", {
          method: request.method,
          path: new URL(request.url).pathname,
        });
        const message = "Запрос отклонён: нет действительного CSRF-токена. Обновите страницу и повторите.";
        const page = isHtmx(request)
          ? ErrorFragment({ status: 403, message })
          : ErrorPage({ view, status: 403, message });
        return status(403, await render(page, 403));
      }
      if (needsRenewal(session.claims)) {
        await startSession(panel, panelJwt as PanelJwt, sessionCookie, session.account, session.claims);
      }
      const result: PanelRequest = { account: session.account, claims: session.claims, view, context: panel };
      return { panel: result };
    });
}

/**
 * How a failed panel request is shown: a fragment where htmx expects one part of the page, the whole page (with
 * the tabs, so the owner is never stranded on a blank page) otherwise.
 */
export function errorView(request: Request, view: View | null) {
  return (status: number, message: string): string =>
    String(isPartial(request) ? ErrorFragment({ status, message }) : ErrorPage({ view, status, message }));
}
