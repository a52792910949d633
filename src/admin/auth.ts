import { type Cookie, Elysia } from "elysia";
import { AccountPage, LoginForm, LoginPage, PasswordForm } from "../../templates/login.tsx";
import { clearRates, countRates, LocalCounters, type RateCount, type RateRule } from "../cache/rate-limit.ts";
import { addressBucket, clientIp } from "../http/client-ip.ts";
import { Refusal } from "../http/errors.ts";
import { log } from "../lib/log.ts";
import { loginFailuresKey, passwordFailuresKey } from "../shop/accounts/accounts.ts";
import { ShopError } from "../shop/errors.ts";
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

/** Wrong passwords allowed per IP, and per login, in the window before the login form stops checking. */
export const LOGIN_FAILURES_ALLOWED = 5;
export const LOGIN_FAILURE_WINDOW_MS = 15 * 60_000;
/** Wrong "current password" entries allowed per account in the same window on the change-password form. */
export const PASSWORD_FAILURES_ALLOWED = 5;

const minutes = (ms: number) => Math.max(1, Math.ceil(ms / 60_000));
const waitText = (ms: number) => `Подождите ${minutes(ms)} мин.`;

/** Refused by the per-IP rule: only waiting helps (a new password does not change the address's count). */
const tooManyFromAddress = (ms: number) =>
  `Слишком много неудачных попыток входа с этого адреса. ${waitText(ms)} и попробуйте снова.`;
/** Refused by the per-login rule: admin:reset clears the login's count, so the advice is true. */
const tooManyForLogin = (ms: number) =>
  `Слишком много неудачных попыток входа в эту учётную запись. ${waitText(ms)} и попробуйте снова ` +
  "или задайте новый пароль: bun run cli admin:reset (вход откроется сразу).";

/**
 * Brute force is limited twice, with different jobs:
 * - per IP: 5 wrong passwords in 15 minutes and that address is refused, whatever the login;
 * - per login: once a login has 5 failures in the window (from anywhere) it is "under attack", and from then on
 *   only an address with no failures of its own in the window is checked for it, so after its first wrong
 *   password an address is refused for that login: a spread-out guesser gets one guess per fresh address, not five.
 * A plain per-login lock would let anyone who merely knows the login keep the owner out for free (five wrong
 * passwords every 15 minutes, from any IPs); this way the owner, whose own address has no failures, still logs in
 * with the right password while the login is under attack.
 */
function loginRules(ip: string, login: string): [RateRule, RateRule] {
  return [
    { key: `panel-login:ip:${addressBucket(ip)}`, limit: LOGIN_FAILURES_ALLOWED, windowMs: LOGIN_FAILURE_WINDOW_MS },
    { key: loginFailuresKey(login), limit: LOGIN_FAILURES_ALLOWED, windowMs: LOGIN_FAILURE_WINDOW_MS },
  ];
}

/**
 * Runs password checks one at a time per key. The limit counts failures only after a check, so checks running
 * side by side would all pass the "under the limit?" test first: 30 parallel guesses were 30 checked passwords
 * instead of 5. One process serves the panel; across several, each adds its own.
 */
function oneAtATime() {
  const tails = new Map<string, Promise<unknown>>();
  return async <T>(keys: string[], work: () => Promise<T>): Promise<T> => {
    const before = keys.map((k) => tails.get(k) ?? Promise.resolve());
    const run = Promise.allSettled(before).then(work);
    const tail = run.catch(() => {});
    for (const k of keys) tails.set(k, tail);
    try {
      return await run;
    } finally {
      for (const k of keys) if (tails.get(k) === tail) tails.delete(k);
    }
  };
}

const none: RateCount = { count: 0, resetMs: 0 };

type Guesses = { serialized: ReturnType<typeof oneAtATime>; limits: { whenCacheDown: LocalCounters } };
const guessesOf = new WeakMap<PanelContext, Guesses>();

/**
 * One queue of password checks and one set of in-process counters per panel, shared by the login form and the
 * change-password form (while Redis is away the limits count in this process instead of switching off).
 */
function guesses(panel: PanelContext): Guesses {
  let found = guessesOf.get(panel);
  if (!found) {
    found = { serialized: oneAtATime(), limits: { whenCacheDown: new LocalCounters() } };
    guessesOf.set(panel, found);
  }
  return found;
}

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
 * The login form's answers, outside the guard. Wrong passwords are limited per address and per login (loginRules).
 */
export function loginRoutes(panel: PanelContext) {
  const { shop, config } = panel;
  const { serialized, limits } = guesses(panel);
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
    const rules = loginRules(ip, login);
    // Queued per address only: a queue per login would let a flood of guesses keep the owner waiting.
    const outcome = await serialized([`ip:${addressBucket(ip)}`], async () => {
      const [fromIp = none, forLogin = none] = (await countRates(shop.deps.cache, rules, 0, limits)) ?? [];
      if (fromIp.count >= LOGIN_FAILURES_ALLOWED) return { refused: tooManyFromAddress(fromIp.resetMs) };
      const underAttack = forLogin.count >= LOGIN_FAILURES_ALLOWED;
      if (underAttack && fromIp.count > 0) return { refused: tooManyForLogin(forLogin.resetMs) };
      const found = await shop.accounts.verify(login, password);
      if (!found) await countRates(shop.deps.cache, rules, 1, limits);
      return { account: found };
    });
    // Never the typed login itself: people type their password into the login field by mistake.
    const typed = async () => ({ loginExists: await shop.accounts.exists(login), loginLength: login.length });
    if ("refused" in outcome) {
      log.warn("panel login refused: too many failures", { ip, ...(await typed()) });
      return answer(429, { message: outcome.refused });
    }
    const { account } = outcome;
    if (!account) {
      log.warn("panel login failed", { ip, ...(await typed()) });
      return answer(401, { message: "Неверный логин или пароль." });
    }
    await startSession(panel, panelJwt as PanelJwt, cookie[SESSION_COOKIE]!, account);
    clearCookie(panel, nonceCookie);
    log.info("panel login", { ip, login: account.login });
    return redirect(request, next ?? `${panel.base}/`, { full: true });
  });
}

/** Logout and the change-password page, behind the guard. */
export function accountRoutes(routes: PanelRoutes, panel: PanelContext) {
  const { shop } = panel;
  const { serialized, limits } = guesses(panel);
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
      // A stolen session must not become unlimited guesses at the password itself: wrong "current" entries
      // are counted per account, like wrong passwords at the login form.
      const rule: RateRule = {
        key: passwordFailuresKey(p.account.id),
        limit: PASSWORD_FAILURES_ALLOWED,
        windowMs: LOGIN_FAILURE_WINDOW_MS,
      };
      type Outcome = { refused: string } | { problem: ShopError } | { changed: true };
      const outcome = await serialized([`account:${p.account.id}`], async (): Promise<Outcome> => {
        const [failures = none] = (await countRates(shop.deps.cache, [rule], 0, limits)) ?? [];
        if (failures.count >= PASSWORD_FAILURES_ALLOWED) {
          const wait = waitText(failures.resetMs);
          return { refused: `Слишком много неверных попыток ввести текущий пароль. ${wait} и попробуйте снова.` };
        }
        try {
          await shop.accounts.changePassword(p.account.id, current, next);
          return { changed: true };
        } catch (error) {
          if (!(error instanceof ShopError) || (error.field !== "current" && error.field !== "next")) throw error;
          if (error.field === "current") await countRates(shop.deps.cache, [rule], 1, limits);
          return { problem: error };
        }
      });
      if ("refused" in outcome) {
        log.warn("panel password change refused: too many wrong current passwords", { login: p.account.login });
        return answer(429, { errors: { current: outcome.refused } });
      }
      if ("problem" in outcome) {
        return answer(422, { errors: { [outcome.problem.field ?? "current"]: outcome.problem.message } });
      }
      await clearRates(shop.deps.cache, [rule.key], limits);
      // The password change ended every session (their tokens carry the old change time); keep this one.
      const account = await shop.accounts.byId(p.account.id);
      if (account) await startSession(panel, panelJwt as PanelJwt, cookie[SESSION_COOKIE]!, account, p.claims);
      log.info("panel password changed", { login: p.account.login });
      return answer(200, { done: true });
    });
}
