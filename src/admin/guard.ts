import { type Cookie, Elysia } from "elysia";
import type { View } from "../../templates/view.ts";
import { Refusal } from "../http/errors.ts";
import { log } from "../lib/log.ts";
import type { PanelAccount } from "../shop/accounts/accounts.ts";
import type { PanelContext } from "./context.ts";
import { isPartial, redirect } from "./respond.ts";
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

/** What a panel handler gets as `panel`: who is logged in, and what templates need to render for them. */
export type PanelRequest = {
  account: PanelAccount;
  claims: SessionClaims;
  /** Pass to every template (Layout, forms): base path, CSRF token, login, static URLs. */
  view: View;
};

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** The logged-in view of each request the guard let through: the error answer shows its page with the tabs. */
const views = new WeakMap<Request, View>();

export function viewOf(request: Request): View | undefined {
  return views.get(request);
}

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
 * The panel's session and CSRF check, applied once to the group of logged-in routes (see `loggedInRoutes`): it
 * resolves `panel` (a PanelRequest) for handlers, sends visitors without a valid session to the login page (303,
 * or HX-Redirect for htmx), and refuses every POST/PUT/PATCH/DELETE whose CSRF token (header X-CSRF-Token or form
 * field _csrf) is missing or not this session's (403). A database that cannot be reached is not caught here: the
 * panel's error answer turns it into the 503 page like any other handler's.
 */
function panelGuard(panel: PanelContext, streamed: (request: Request) => boolean) {
  return new Elysia().use(sessionJwt(panel)).resolve({ as: "scoped" }, async (ctx) => {
    const { request, cookie, body, panelJwt } = ctx;
    const sessionCookie = cookie[SESSION_COOKIE] as Cookie<unknown>;
    const session = await readSession(panel, panelJwt as PanelJwt, sessionCookie.value);
    if (!session) {
      if (sessionCookie.value !== undefined) clearCookie(panel, sessionCookie);
      const to = loginRedirect(panel, request);
      return ctx.status(to.status as 200, to);
    }
    const csrf = csrfToken(panel, session.claims.sid);
    const view = viewFor(panel, session.account.login, csrf, await ownerBadge(panel, request));
    views.set(request, view);
    // An upload read as a stream carries its _csrf field in the stream: its handler checks it before any file byte.
    const token = csrfFromRequest(request, body);
    const deferred = token === undefined && streamed(request);
    if (!SAFE_METHODS.has(request.method) && !deferred && !csrfValid(panel, session.claims.sid, token)) {
      log.warn("panel request without a valid CSRF token", {
        method: request.method,
        path: new URL(request.url).pathname,
      });
      throw csrfRefusal();
    }
    if (needsRenewal(session.claims)) {
      await startSession(panel, panelJwt as PanelJwt, sessionCookie, session.account, session.claims);
    }
    const result: PanelRequest = { account: session.account, claims: session.claims, view };
    return { panel: result, csrfChecked: !deferred };
  });
}

export function csrfRefusal(): Refusal {
  return new Refusal(403, "Запрос отклонён: нет действительного CSRF-токена. Обновите страницу и повторите.");
}

/**
 * The one Elysia instance every logged-in panel route is added to: the guard runs once for all of them, and each
 * tab's file adds its routes with a function (`productsRoutes(routes, panel)`), so a handler only finds, acts and
 * renders or redirects — what goes wrong is thrown and answered by the panel's error handler (error-pages.ts).
 */
export function loggedInRoutes(panel: PanelContext, options: { streamed?: (request: Request) => boolean } = {}) {
  return new Elysia().use(panelGuard(panel, options.streamed ?? (() => false)));
}

export type PanelRoutes = ReturnType<typeof loggedInRoutes>;
