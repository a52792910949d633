import { randomBytes } from "node:crypto";
import { jwt } from "@elysiajs/jwt";
import type { Cookie } from "elysia";
import * as v from "valibot";
import type { PanelAccount } from "../shop/accounts/accounts.ts";
import type { PanelContext } from "./context.ts";

/**
 * The panel session: a JWT (HS256, SESSION_SECRET) in an HttpOnly, SameSite=Strict cookie scoped to BASE_PATH,
 * Secure when PUBLIC_URL is https. It ends after 12 idle hours, 7 days after login at the latest, at logout (its id
 * is recorded as revoked in PostgreSQL, so no Redis flush or outage revives it), and when the account's password
 * changes (the token carries the change time).
 */
export const SESSION_COOKIE = "mph_session";
export const IDLE_SECONDS = 12 * 60 * 60;
export const MAX_SESSION_SECONDS = 7 * 24 * 60 * 60;
/** An active session's token is re-issued (sliding expiry) once it is this old. */
export const RENEW_AFTER_SECONDS = 15 * 60;

const ClaimsSchema = v.object({
  sub: v.pipe(v.string(), v.regex(/^\d{1,15}$/)),
  sid: v.pipe(v.string(), v.regex(/^[\w-]{16,64}$/)),
  pwc: v.pipe(v.number(), v.integer()),
  auth: v.pipe(v.number(), v.integer()),
  iat: v.pipe(v.number(), v.integer()),
  exp: v.pipe(v.number(), v.integer()),
});
export type SessionClaims = v.InferOutput<typeof ClaimsSchema>;

/** The JWT signer/verifier, as the `panelJwt` decorator. */
export function sessionJwt(panel: PanelContext) {
  return jwt({ name: "panelJwt", secret: panel.secret, alg: "HS256" });
}

export type PanelJwt = {
  sign(claims: Record<string, string | number>): Promise<string>;
  verify(token?: string, options?: { algorithms: string[] }): Promise<Record<string, unknown> | false>;
};

const nowSeconds = () => Math.floor(Date.now() / 1000);

export type Session = { account: PanelAccount; claims: SessionClaims };

/** The session a cookie value proves, or null: missing, tampered, expired, revoked, or the password changed. */
export async function readSession(panel: PanelContext, signer: PanelJwt, token: unknown): Promise<Session | null> {
  if (typeof token !== "string" || token.length === 0 || token.length > 4096) return null;
  const payload = await signer.verify(token, { algorithms: ["HS256"] });
  if (!payload) return null;
  const parsed = v.safeParse(ClaimsSchema, payload);
  if (!parsed.success) return null;
  const claims = parsed.output;
  if (nowSeconds() - claims.auth > MAX_SESSION_SECONDS) return null;
  // The account and the revocation in one query: no second round trip, and nothing that a cache flush could lose.
  const found = await panel.shop.accounts.session(Number(claims.sub), claims.sid);
  if (!found || found.revoked) return null;
  if (found.account.passwordChangedAt.getTime() !== claims.pwc) return null;
  return { account: found.account, claims };
}

/** Signs a session for the account (a new one, or the same session renewed) and sets the cookie. */
export async function startSession(
  panel: PanelContext,
  signer: PanelJwt,
  cookie: Cookie<unknown>,
  account: PanelAccount,
  continuing?: Pick<SessionClaims, "sid" | "auth">,
): Promise<string> {
  const sid = continuing?.sid ?? randomBytes(18).toString("base64url");
  const auth = continuing?.auth ?? nowSeconds();
  const exp = Math.min(nowSeconds() + IDLE_SECONDS, auth + MAX_SESSION_SECONDS);
  const token = await signer.sign({
    sub: String(account.id),
    sid,
    pwc: account.passwordChangedAt.getTime(),
    auth,
    exp,
  });
  cookie.set({
    value: token,
    path: panel.cookiePath,
    httpOnly: true,
    sameSite: "strict",
    secure: panel.secure,
    maxAge: exp - nowSeconds(),
  });
  return sid;
}

/** Whether an active session should get a fresh token (sliding idle expiry). */
export function needsRenewal(claims: SessionClaims): boolean {
  return nowSeconds() - claims.iat >= RENEW_AFTER_SECONDS;
}

export function clearCookie(panel: PanelContext, cookie: Cookie<unknown>): void {
  cookie.set({
    value: "",
    path: panel.cookiePath,
    httpOnly: true,
    sameSite: "strict",
    secure: panel.secure,
    maxAge: 0,
  });
}

/**
 * Ends a session everywhere: the token stays signed, so its id is remembered as revoked until it could expire.
 * Throws when that cannot be recorded.
 */
export async function revokeSession(panel: PanelContext, account: PanelAccount, claims: SessionClaims): Promise<void> {
  const until = new Date((claims.auth + MAX_SESSION_SECONDS) * 1000);
  await panel.shop.accounts.revokeSession(account.id, claims.sid, until);
}

// ---- CSRF -----------------------------------------------------------------------------------------------------

/**
 * CSRF tokens (Bun.CSRF, HMAC with SESSION_SECRET) bound to the session id, so a token from one session is worthless
 * in another. Before login the binding is a random nonce kept in its own short-lived cookie.
 */
export const LOGIN_COOKIE = "mph_login";
export const LOGIN_NONCE_SECONDS = 60 * 60;
export const CSRF_HEADER = "x-csrf-token";
export const CSRF_FIELD = "_csrf";

export function csrfToken(panel: PanelContext, binding: string, lifetimeSeconds = MAX_SESSION_SECONDS): string {
  return Bun.CSRF.generate(panel.secret, { sessionId: binding, expiresIn: lifetimeSeconds * 1000 });
}

export function csrfValid(
  panel: PanelContext,
  binding: string,
  token: unknown,
  lifetimeSeconds = MAX_SESSION_SECONDS,
): boolean {
  if (typeof token !== "string" || token.length === 0 || token.length > 512) return false;
  try {
    return Bun.CSRF.verify(token, { secret: panel.secret, sessionId: binding, maxAge: lifetimeSeconds * 1000 });
  } catch {
    return false;
  }
}

/** The token a request carries: the htmx header (hx-headers on <body>) or the hidden field of a plain form. */
export function csrfFromRequest(request: Request, body: unknown): unknown {
  const header = request.headers.get(CSRF_HEADER);
  if (header) return header;
  if (body && typeof body === "object" && CSRF_FIELD in body) return (body as Record<string, unknown>)[CSRF_FIELD];
  return undefined;
}

export function newLoginNonce(): string {
  return randomBytes(18).toString("base64url");
}
