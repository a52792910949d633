import { Elysia } from "elysia";
import { ErrorFragment, ErrorPage } from "../../templates/layout.tsx";
import { answerErrorsWith, type ErrorProblem } from "../http/errors.ts";
import { log } from "../lib/log.ts";
import type { PanelContext } from "./context.ts";
import { viewFor } from "./guard.ts";
import { html, isPartial } from "./respond.ts";
import { csrfToken, type PanelJwt, readSession, SESSION_COOKIE, sessionJwt } from "./session.ts";

const MESSAGES: Record<Exclude<ErrorProblem["kind"], "refused">, string> = {
  not_found: "Такой страницы в панели нет. Проверьте адрес или вернитесь на главную.",
  malformed: "Не удалось прочитать отправленные данные. Обновите страницу и отправьте форму ещё раз.",
  internal: "Внутренняя ошибка. Попробуйте ещё раз; если повторится — смотрите журнал.",
};

/** The path of a request URL without parsing it whole: this runs for every request the server gets. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const query = url.indexOf("?", start);
  return url.slice(start, query < 0 ? undefined : query);
}

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

/**
 * Errors no panel handler answered — an unknown URL, a form body that cannot be parsed, a bug — as the panel's
 * own HTML: the fragment where htmx swaps one part of the page, otherwise the whole page (with the tabs when the
 * session is valid), never the API's JSON that htmx would paste into the page.
 */
export function panelErrorPages(panel: PanelContext) {
  const signer = sessionJwt(panel).decorator.panelJwt as PanelJwt;
  const isPanelUrl = panelUrlMatcher(panel);

  async function answer(request: Request, problem: ErrorProblem): Promise<Response> {
    const { status } = problem;
    const message = problem.message ?? MESSAGES[problem.kind as keyof typeof MESSAGES];
    const headers = {
      "x-frame-options": "DENY",
      "x-content-type-options": "nosniff",
      "referrer-policy": "same-origin",
    };
    if (isPartial(request)) return html(String(ErrorFragment({ status, message })), status, headers);
    let view = viewFor(panel, "", "");
    try {
      const session = await readSession(panel, signer, cookieValue(request, SESSION_COOKIE));
      if (session) view = viewFor(panel, session.account.login, csrfToken(panel, session.claims.sid));
    } catch (error) {
      // The database being down is no reason to lose the error page: it is shown without the tabs.
      log.warn("panel error page: session check failed", { error });
    }
    return html(String(await ErrorPage({ view, status, message })), status, headers);
  }

  // onRequest runs before routing, for every request the server gets (whatever plugin registers it): hence the
  // path check, and the claim is made before an unknown URL or an unreadable body can fail.
  return new Elysia().onRequest(({ request }) => {
    if (isPanelUrl(request.url)) answerErrorsWith(request, (problem) => answer(request, problem));
  });
}
