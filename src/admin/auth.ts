import { type Cookie, Elysia } from "elysia";
import { AccountPage, LoginForm, LoginPage, PasswordForm } from "../../templates/login.tsx";
import { addressBucket, clientIp } from "../http/client-ip.ts";
import { Refusal } from "../http/errors.ts";
import { log } from "../lib/log.ts";
import type { PanelContext } from "./context.ts";
import { type PanelRoutes, viewFor } from "./guard.ts";
import { field, isHtmx, redirect, render } from "./respond.ts";
import {
  clearCookie,
  csrfToken,
  csrfValid,
  LOGIN_COOKIE,
  LOGIN_NONCE_SECONDS,
  newLoginNonce,
  type PanelJwt,
  revokeSession,
  SESSION_COOKIE,
  sessionJwt,
  startSession,
} from "./session.ts";

const minutes = (ms: number) => Math.max(1, Math.ceil(ms / 60_000));
const waitText = (ms: number) => `Подождите ${minutes(ms)} мин.`;

/** Refused by the per-address rule: only waiting helps (a new password does not change the address's count). */
const tooManyFromAddress = (ms: number) =>
  `Слишком много неудачных попыток входа с этого адреса. ${waitText(ms)} и попробуйте снова.`;
/** Refused by the per-login rule: admin:reset clears the login's count, so the advice is true. */
const tooManyForLogin = (ms: number) =>
  `Слишком много неудачных попыток входа в эту учётную запись. ${waitText(ms)} и попробуйте снова ` +
  "или задайте новый пароль: bun run cli admin:reset (вход откроется сразу).";

/**
 * Only a page of this panel may be the place to go after login (never another site: an open redirect). The answer
 * is the path as the URL parser writes it — dot segments resolved, anything outside printable ASCII
 * percent-encoded — because it becomes a Location header, which refuses anything else.
 */
export function safeNext(panel: PanelContext, next: string | undefined): string | undefined {
  if (!next || next.length > 500 || next.includes("//") || next.includes("\\")) return undefined;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(next)) return undefined;
  const origin = "http://panel.invalid";
  let url: URL;
  try {
    url = new URL(next, origin);
  } catch {
    return undefined;
  }
  if (url.origin !== origin) return undefined;
  const path = `${url.pathname}${url.search}`;
  return path.startsWith(`${panel.base}/`) ? path : undefined;
}

/**
 * A fresh pre-login CSRF binding: a random nonce in a short-lived cookie, and the token made for it. A page from
 * another site can neither read the token nor send the SameSite=Strict cookie, so it cannot log anybody in.
 */
function loginToken(panel: PanelContext, cookie: Cookie<unknown>): string {
  const current = cookie.value;
  const nonce = typeof current === "string" && /^[\w-]{24}$/.test(current) ? current : newLoginNonce();
  cookie.set({
    value: nonce,
    path: panel.cookiePath,
    httpOnly: true,
    sameSite: "strict",
    secure: panel.secure,
    maxAge: LOGIN_NONCE_SECONDS,
  });
  return csrfToken(panel, `login:${nonce}`, LOGIN_NONCE_SECONDS);
}

/** The login page (shown at BASE_PATH/ to visitors without a session). */
export async function renderLoginPage(
  panel: PanelContext,
  cookie: Record<string, Cookie<unknown>>,
  next: string | undefined,
): Promise<Response> {
  const view = viewFor(panel, "", loginToken(panel, cookie[LOGIN_COOKIE]!));
  return render(LoginPage({ view, next: safeNext(panel, next) }), 200, {
    // The login page must never be served from a cache: its token is tied to this browser's cookie.
    "cache-control": "no-store",
    "x-frame-options": "DENY",
  });
}

/**
 * The login form's answers, outside the guard. Wrong passwords are limited per address and per login
 * (shop/accounts/login-limits.ts).
 */
export function loginRoutes(panel: PanelContext) {
  const { shop, config } = panel;
  return new Elysia().use(sessionJwt(panel)).post("/login", async ({ request, body, cookie, server, panelJwt }) => {
    const login = field(body, "login").trim();
    const password = field(body, "password");
    const next = safeNext(panel, field(body, "next"));
    const nonceCookie = cookie[LOGIN_COOKIE]!;
    const nonce = nonceCookie.value;

    const answer = async (status: number, props: { message?: string; errors?: Record<string, string> }) => {
      const view = viewFor(panel, "", loginToken(panel, nonceCookie));
      const form = { view, login, next, ...props };
      return render(isHtmx(request) ? LoginForm(form) : LoginPage(form), status, { "x-frame-options": "DENY" });
    };

    if (typeof nonce !== "string" || !csrfValid(panel, `login:${nonce}`, field(body, "_csrf"), LOGIN_NONCE_SECONDS)) {
      return answer(403, { message: "Страница входа устарела. Введите логин и пароль ещё раз." });
    }
    const errors: Record<string, string> = {};
    if (login === "" || login.length > 64) errors.login = "Введите логин";
    if (password === "" || password.length > 1024) errors.password = "Введите пароль";
    if (Object.keys(errors).length > 0) return answer(422, { errors });

    const ip = clientIp(request, server, config.trustedProxies) ?? "unknown";
    const attempt = await shop.accounts.logIn(login, password, addressBucket(ip));
    // Never the typed login itself: people type their password into the login field by mistake.
    const typed = async () => ({ loginExists: await shop.accounts.exists(login), loginLength: login.length });
    if ("refused" in attempt) {
      log.warn("panel login refused: too many failures", { ip, ...(await typed()) });
      const refused = attempt.refused === "address" ? tooManyFromAddress : tooManyForLogin;
      return answer(429, { message: refused(attempt.retryInMs) });
    }
    if ("wrong" in attempt) {
      log.warn("panel login failed", { ip, ...(await typed()) });
      return answer(401, { message: "Неверный логин или пароль." });
    }
    const { account } = attempt;
    await startSession(panel, panelJwt as PanelJwt, cookie[SESSION_COOKIE]!, account);
    clearCookie(panel, nonceCookie);
    log.info("panel login", { ip, login: account.login });
    return redirect(request, next ?? `${panel.base}/`, { full: true });
  });
}

/** Logout and the change-password page, behind the guard. */
export function accountRoutes(routes: PanelRoutes, panel: PanelContext) {
  const { shop } = panel;
  return routes
    .post("/logout", async ({ request, cookie, panel: p }) => {
      try {
        await revokeSession(panel, p.account, p.claims);
      } catch (error) {
        // The cookie is kept: clearing it would look like a logout while the token still opens the panel.
        log.error("panel logout failed: the session could not be revoked and stays valid", {
          login: p.account.login,
          error,
        });
        throw new Refusal(
          503,
          "Выход не выполнен: не удалось записать завершение сессии (база данных недоступна), и сессия остаётся действующей. Повторите «Выйти» через минуту.",
        );
      }
      clearCookie(panel, cookie[SESSION_COOKIE]!);
      log.info("panel logout", { login: p.account.login });
      return redirect(request, `${panel.base}/`, { full: true });
    })
    .get("/account", ({ panel: p }) => render(AccountPage({ view: p.view })))
    .post("/account/password", async ({ request, body, cookie, panel: p, panelJwt }) => {
      const current = field(body, "current");
      const next = field(body, "next");
      const answer = (status: number, props: { errors?: Record<string, string>; done?: boolean }) =>
        render(
          isHtmx(request) ? PasswordForm({ view: p.view, ...props }) : AccountPage({ view: p.view, ...props }),
          status,
        );
      if (next !== field(body, "repeat")) return answer(422, { errors: { repeat: "Пароли не совпадают" } });
      const outcome = await shop.accounts.changeOwnPassword(p.account.id, current, next);
      if ("refused" in outcome) {
        log.warn("panel password change refused: too many wrong current passwords", { login: p.account.login });
        const wait = waitText(outcome.retryInMs);
        const refused = `Слишком много неверных попыток ввести текущий пароль. ${wait} и попробуйте снова.`;
        return answer(429, { errors: { current: refused } });
      }
      if ("problem" in outcome) {
        return answer(422, { errors: { [outcome.problem.field ?? "current"]: outcome.problem.message } });
      }
      // The password change ended every session (their tokens carry the old change time); keep this one.
      const account = await shop.accounts.byId(p.account.id);
      if (account) await startSession(panel, panelJwt as PanelJwt, cookie[SESSION_COOKIE]!, account, p.claims);
      log.info("panel password changed", { login: p.account.login });
      return answer(200, { done: true });
    });
}
