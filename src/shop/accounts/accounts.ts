import { clearRates } from "../../cache/rate-limit.ts";
import type { ShopDeps } from "../deps.ts";
import { invalid, notFound } from "../errors.ts";

export type PanelAccount = { id: number; login: string; passwordChangedAt: Date };

export const LOGIN_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/** A random password without look-alike characters: 20 symbols ≈ 115 bits. */
export function generatePassword(length = 20): string {
  const bytes = new Uint8Array(length * 2);
  crypto.getRandomValues(bytes);
  let out = "";
  for (const b of bytes) {
    // Rejection sampling keeps every symbol equally likely (256 is not a multiple of the alphabet size).
    if (b >= 256 - (256 % PASSWORD_ALPHABET.length)) continue;
    out += PASSWORD_ALPHABET[b % PASSWORD_ALPHABET.length];
    if (out.length === length) return out;
  }
  return out + generatePassword(length - out.length);
}

/**
 * The rate-limit counters of an account, named here so that the login limits (which count) and reset (which clears)
 * agree: wrong passwords typed at the login form for this login, and wrong "current password" entries of this
 * account.
 */
// The login as typed is named by a digest: people type their password into the login field by mistake, and Redis's
// key names are no place for it.
export const loginFailuresKey = (login: string) =>
  `panel-login:login:${new Bun.CryptoHasher("sha256").update(login.toLowerCase()).digest("base64url").slice(0, 22)}`;
export const passwordFailuresKey = (accountId: number) => `panel-password:account:${accountId}`;

// Verifying against this when the login is unknown makes a wrong login cost as much time as a wrong password.
const DUMMY_HASH = Bun.password.hash("not-a-real-password", { algorithm: "argon2id" });

export function createAccounts(deps: ShopDeps) {
  const { sql } = deps;

  async function count(): Promise<number> {
    const [row] = await sql<{ n: string }[]>`select count(*) as n from panel_accounts`;
    return Number(row!.n);
  }

  /**
   * Creates the account or gives it a new password; returns the password, shown once and never stored in clear.
   * It also forgets the account's failed attempts: the panel's "too many attempts" message sends the owner here,
   * and the new password must open the panel at once. (Counts kept in a server's memory while Redis is away are
   * out of this process's reach; they end with their 15-minute window.)
   */
  async function reset(login = "admin"): Promise<{ login: string; password: string }> {
    if (!LOGIN_PATTERN.test(login)) throw invalid("Логин — 1–64 символа: латиница, цифры, . _ -", "login");
    const password = generatePassword();
    const hash = await Bun.password.hash(password, { algorithm: "argon2id" });
    const [row] = await sql<{ id: string }[]>`
      insert into panel_accounts (login, password_hash) values (${login}, ${hash})
      on conflict (login) do update set password_hash = excluded.password_hash, password_changed_at = now()
      returning id`;
    await clearRates(deps.cache, [loginFailuresKey(login), passwordFailuresKey(Number(row!.id))]);
    return { login, password };
  }

  async function verify(login: string, password: string): Promise<PanelAccount | null> {
    const [row] = LOGIN_PATTERN.test(login)
      ? await sql<{ id: string; login: string; password_hash: string; password_changed_at: Date }[]>`
          select id, login, password_hash, password_changed_at from panel_accounts where login = ${login}`
      : [];
    const ok = await Bun.password.verify(password.slice(0, 1024), row?.password_hash ?? (await DUMMY_HASH));
    if (!row || !ok) return null;
    return { id: Number(row.id), login: row.login, passwordChangedAt: row.password_changed_at };
  }

  /** Whether an account has this login: lets a failed attempt be logged without the typed text. */
  async function exists(login: string): Promise<boolean> {
    if (!LOGIN_PATTERN.test(login)) return false;
    const [row] = await sql`select 1 from panel_accounts where login = ${login}`;
    return row !== undefined;
  }

  async function byId(id: number): Promise<PanelAccount | null> {
    const [row] = await sql<{ id: string; login: string; password_changed_at: Date }[]>`
      select id, login, password_changed_at from panel_accounts where id = ${id}`;
    return row ? { id: Number(row.id), login: row.login, passwordChangedAt: row.password_changed_at } : null;
  }

  /**
   * The account a panel session belongs to, and whether that session was ended by logout: one query, since the
   * panel asks on every request.
   */
  async function session(id: number, sid: string): Promise<{ account: PanelAccount; revoked: boolean } | null> {
    const [row] = await sql<{ id: string; login: string; password_changed_at: Date; revoked: boolean }[]>`
      select id, login, password_changed_at,
             exists (select 1 from panel_revoked_sessions where sid = ${sid}) as revoked
      from panel_accounts where id = ${id}`;
    if (!row) return null;
    return {
      account: { id: Number(row.id), login: row.login, passwordChangedAt: row.password_changed_at },
      revoked: row.revoked,
    };
  }

  /**
   * Ends a panel session for good (logout): its id is kept until `until`, when its token expires anyway. Throws
   * when the database cannot record it: the caller must then not pretend the session ended.
   */
  async function revokeSession(id: number, sid: string, until: Date): Promise<void> {
    await sql.begin(async (tx) => {
      await tx`delete from panel_revoked_sessions where expires_at < now()`;
      await tx`
        insert into panel_revoked_sessions (sid, account_id, expires_at) values (${sid}, ${id}, ${until})
        on conflict (sid) do nothing`;
    });
  }

  async function changePassword(id: number, current: string, next: string): Promise<void> {
    const account = await byId(id);
    if (!account) throw notFound("Учётная запись не найдена");
    if (!(await verify(account.login, current))) throw invalid("Текущий пароль неверен", "current");
    if (next.length < 10 || next.length > 200) throw invalid("Новый пароль — от 10 до 200 символов", "next");
    const hash = await Bun.password.hash(next, { algorithm: "argon2id" });
    await sql`update panel_accounts set password_hash = ${hash}, password_changed_at = now() where id = ${id}`;
  }

  return { count, reset, verify, exists, byId, session, revokeSession, changePassword };
}

export type Accounts = ReturnType<typeof createAccounts>;
