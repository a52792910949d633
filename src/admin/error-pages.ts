import { Elysia } from "elysia";
import { ErrorFragment, ErrorPage } from "../../templates/layout.tsx";
import type { View } from "../../templates/view.ts";
import { answerErrorsWith, type ErrorProblem } from "../http/errors.ts";
import { pathOf } from "../http/path.ts";
import { log } from "../lib/log.ts";
import type { PanelContext } from "./context.ts";
import { viewFor, viewOf } from "./guard.ts";
import { html, isPartial } from "./respond.ts";
import { csrfToken, type PanelJwt, readSession, SESSION_COOKIE, sessionJwt } from "./session.ts";

const MESSAGES: Record<Exclude<ErrorProblem["kind"], "refused">, string> = {
  not_found: "Такой страницы в панели нет. Проверьте адрес или вернитесь на главную.",
  malformed: "Не удалось прочитать отправленные данные. Обновите страницу и отправьте форму ещё раз.",
  unavailable: "База данных сейчас недоступна. Подождите немного и повторите.",
  internal: "Внутренняя ошибка. Попробуйте ещё раз; если повторится — смотрите журнал.",
};

/** Where an htmx request's error is shown: a bar at the top of every panel page, so the form the owner filled stays. */
const ALERT_TARGET = "#panel-alert";

/**
 * Which URLs are the panel's: everything under BASE_PATH except what answers machines there — the licence API
 * (JSON), AnyPay's notifications (plain text), the health check and the bot's webhook.
 */
export function panelUrlMatcher(panel: PanelContext): (url: string) => boolean {
  const bases = [...new Set([panel.base, panel.config.basePath])];
  const webhook = panel.config.botWebhookUrl ? new URL(panel.config.botWebhookUrl).pathname : null;
  // As the URL parser writes it and as a client may (spaces encoded, other characters left as they are).
  const webhooks = new Set(webhook ? [webhook, encodeURI(decodeURIComponent(webhook))] : []);
  const machines = ["/api/", "/payments/"];
  return (url) => {
    const path = pathOf(url);
    if (webhooks.has(path)) return false;
    for (const base of bases) {
      if (path !== base && !path.startsWith(`${base}/`)) continue;
      const rest = path.slice(base.length);
      return rest !== "/healthz" && !machines.some((m) => rest.startsWith(m));
    }
    return false;
  };
}

function cookieValue(request: Request, name: string): string | undefined {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const SECURITY_HEADERS = {
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
};

/**
 * The panel's one error handler. Whatever a panel request ends in — a refusal a handler threw (ShopError,
 * Refusal: its status and words), an unknown URL, a body that cannot be parsed, the database away (503), a bug
 * (500, logged by the shared handler) — it is answered here as the panel's own HTML: for an htmx swap a fragment
 * shown in the alert bar (HX-Retarget, so the form the owner was filling is not replaced), otherwise the whole
 * page with the tabs when the session is known. It is claimed per request before routing, because an unknown URL
 * never reaches a route's hooks.
 */
export function panelErrorPages(panel: PanelContext) {
  const signer = sessionJwt(panel).decorator.panelJwt as PanelJwt;
  const isPanelUrl = panelUrlMatcher(panel);

  /** The logged-in view for the page: the guard's, or the cookie's when the guard did not run (an unknown URL). */
  async function viewForPage(request: Request): Promise<View> {
    const known = viewOf(request);
    if (known) return known;
    try {
      const session = await readSession(panel, signer, cookieValue(request, SESSION_COOKIE));
      if (session) return viewFor(panel, session.account.login, csrfToken(panel, session.claims.sid));
    } catch (error) {
      // The database being down is no reason to lose the error page: it is shown without the tabs.
      log.warn("panel error page: session check failed", { error });
    }
    return viewFor(panel, "", "");
  }

  async function answer(request: Request, problem: ErrorProblem): Promise<Response> {
    const { status } = problem;
    const message = problem.message ?? MESSAGES[problem.kind as keyof typeof MESSAGES];
    const headers: Record<string, string> = { ...SECURITY_HEADERS };
    if (problem.kind === "unavailable") headers["retry-after"] = "5";
    if (isPartial(request)) {
      headers["hx-retarget"] = ALERT_TARGET;
      headers["hx-reswap"] = "innerHTML";
      return html(String(ErrorFragment({ status, message })), status, headers);
    }
    const view = await viewForPage(request);
    return html(String(await ErrorPage({ view, status, message })), status, headers);
  }

  // onRequest runs before routing, for every request the server gets (whatever plugin registers it): hence the
  // path check, and the claim is made before an unknown URL or an unreadable body can fail.
  return new Elysia().onRequest(({ request }) => {
    if (isPanelUrl(request.url)) answerErrorsWith(request, (problem) => answer(request, problem));
  });
}
