import { clearRates, countRates, LocalCounters, type RateCount, type RateRule } from "../../cache/rate-limit.ts";
import type { ShopDeps } from "../deps.ts";
import { ShopError } from "../errors.ts";
import { type Accounts, loginFailuresKey, type PanelAccount, passwordFailuresKey } from "./accounts.ts";

/** Wrong passwords allowed per address, and per login, in the window before the login form stops checking. */
export const LOGIN_FAILURES_ALLOWED = 5;
export const LOGIN_FAILURE_WINDOW_MS = 15 * 60_000;
/** Wrong "current password" entries allowed per account in the same window on the change-password form. */
export const PASSWORD_FAILURES_ALLOWED = 5;

/**
 * What came of a login attempt: the account, a wrong login or password (counted), or a refusal without checking
 * the password — by the address's count, or by the login's while it is under attack — with the time to wait.
 */
export type LoginAttempt =
  | { account: PanelAccount }
  | { wrong: true }
  | { refused: "address" | "login"; retryInMs: number };

/** What came of a password change asked for with the current password. */
export type PasswordChange = { changed: true } | { problem: ShopError } | { refused: true; retryInMs: number };

/**
 * Brute force is limited twice, with different jobs:
 * - per address: 5 wrong passwords in 15 minutes and that address is refused, whatever the login;
 * - per login: once a login has 5 failures in the window (from anywhere) it is "under attack", and from then on
 *   only an address with no failures of its own in the window is checked for it, so after its first wrong
 *   password an address is refused for that login: a spread-out guesser gets one guess per fresh address, not five.
 * A plain per-login lock would let anyone who merely knows the login keep the owner out for free (five wrong
 * passwords every 15 minutes, from any addresses); this way the owner, whose own address has no failures, still
 * logs in with the right password while the login is under attack.
 */
function loginRules(addressBucket: string, login: string): [RateRule, RateRule] {
  return [
    { key: `panel-login:ip:${addressBucket}`, limit: LOGIN_FAILURES_ALLOWED, windowMs: LOGIN_FAILURE_WINDOW_MS },
    { key: loginFailuresKey(login), limit: LOGIN_FAILURES_ALLOWED, windowMs: LOGIN_FAILURE_WINDOW_MS },
  ];
}

/**
 * Runs password checks one at a time per key. The limit counts failures only after a check, so checks running
 * side by side would all pass the "under the limit?" test first: 30 parallel guesses were 30 checked passwords
 * instead of 5. Each app process queues its own.
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

/**
 * The panel's password checks, limited against guessing: the login form and the change-password form. Unlike the
 * shop's other limits these keep counting while Redis is away — in this process meanwhile — since failing open
 * would switch brute-force protection off.
 */
export function createLoginLimits(deps: ShopDeps, accounts: Pick<Accounts, "verify" | "changePassword">) {
  const { cache } = deps;
  const serialized = oneAtATime();
  const limits = { whenCacheDown: new LocalCounters() };

  /** A login from an address (its bucket, see http/client-ip.ts): queued per address, never per login, so a flood
   * of guesses at one login cannot keep its owner waiting. */
  function logIn(login: string, password: string, addressBucket: string): Promise<LoginAttempt> {
    const rules = loginRules(addressBucket, login);
    return serialized([`ip:${addressBucket}`], async (): Promise<LoginAttempt> => {
      const [fromIp = none, forLogin = none] = (await countRates(cache, rules, 0, limits)) ?? [];
      if (fromIp.count >= LOGIN_FAILURES_ALLOWED) return { refused: "address", retryInMs: fromIp.resetMs };
      const underAttack = forLogin.count >= LOGIN_FAILURES_ALLOWED;
      if (underAttack && fromIp.count > 0) return { refused: "login", retryInMs: forLogin.resetMs };
      const account = await accounts.verify(login, password);
      if (account) return { account };
      await countRates(cache, rules, 1, limits);
      return { wrong: true };
    });
  }

  /**
   * A logged-in owner changes their password. A stolen session must not become unlimited guesses at the password
   * itself: wrong "current" entries are counted per account, like wrong passwords at the login form.
   */
  async function changeOwnPassword(accountId: number, current: string, next: string): Promise<PasswordChange> {
    const rule: RateRule = {
      key: passwordFailuresKey(accountId),
      limit: PASSWORD_FAILURES_ALLOWED,
      windowMs: LOGIN_FAILURE_WINDOW_MS,
    };
    const outcome = await serialized([`account:${accountId}`], async (): Promise<PasswordChange> => {
      const [failures = none] = (await countRates(cache, [rule], 0, limits)) ?? [];
      if (failures.count >= PASSWORD_FAILURES_ALLOWED) return { refused: true, retryInMs: failures.resetMs };
      try {
        await accounts.changePassword(accountId, current, next);
        return { changed: true };
      } catch (error) {
        if (!(error instanceof ShopError) || (error.field !== "current" && error.field !== "next")) throw error;
        if (error.field === "current") await countRates(cache, [rule], 1, limits);
        return { problem: error };
      }
    });
    if ("changed" in outcome) await clearRates(cache, [rule.key], limits);
    return outcome;
  }

  return { logIn, changeOwnPassword };
}
