import postgres from "postgres";
import { log } from "../lib/log.ts";
import type { Sql } from "./client.ts";

/** First half of every lock key of the shop (the migration lock uses the one-number form, so they never meet). */
const LOCK_NAMESPACE = 7_310_424;

/** Things exactly one process of the shop does at a time. */
export const LOCKS = {
  /** Receiving the bot's updates: two pollers of one bot make Telegram cut both off with 409. */
  botPoller: 1,
  /** Sending broadcasts: Telegram's 25 messages a second are for the whole bot, not per process. */
  broadcastSender: 2,
} as const;

export type SessionLock = {
  /**
   * Takes the lock if it is free, or confirms that this process still holds it. False when another process holds
   * it, or when the database cannot answer (without the database the shop cannot do the work anyway).
   */
  hold(): Promise<boolean>;
  /** Gives the lock back at once; from then on hold() answers false. */
  release(): Promise<void>;
  /** Closes the lock's connection without unlocking: what the others see when this process is killed. */
  abandon(): Promise<void>;
};

/**
 * A lock held by one process at a time: a PostgreSQL session-level advisory lock on a connection of its own. It
 * lives exactly as long as that connection, so it needs no Redis and no lease to wait out: a process that dies
 * closes its connection and the lock is free at once. A machine that vanishes without closing its sockets is cut
 * off by the server after `idleCutoffMs` of silence (idle_session_timeout), while a live holder checks in more often
 * than that.
 *
 * The connection is a one-connection client of its own rather than one reserved from the shop's pool: a reserved
 * connection that the server closes (a restart, the idle cut-off) cannot be queried or returned to the pool safely
 * in postgres.js, while its own client simply reconnects — into a new session that holds nothing, which the next
 * check notices.
 *
 * The embedded dev database (a pool of one connection, no URL in the configuration) serves a single process,
 * which is then always the holder.
 */
export function sessionLock(
  sql: Sql,
  databaseUrl: string | undefined,
  key: number,
  options: { idleCutoffMs: number },
): SessionLock {
  const alone = !databaseUrl || (sql.options.max ?? 10) <= 1;
  let conn: Sql | null = null;
  let session: number | null = null;
  let holding = false;
  let closed = false;
  // One check at a time: a connection attempt to a down database must not pile up behind a timer.
  let pending: Promise<boolean> | null = null;

  function connect(url: string): Sql {
    return postgres(url, {
      max: 1,
      // The lock lasts as long as the connection: postgres.js must never close it for idling or for age.
      idle_timeout: 0,
      max_lifetime: 0,
      connect_timeout: 5,
      onnotice: () => {},
      connection: { application_name: "morpheus-shop lock" },
    });
  }

  async function check(): Promise<boolean> {
    try {
      conn ??= connect(databaseUrl!);
      // CASE evaluates in order: a lock already held is not taken a second time (session locks stack).
      const [row] = await conn<{ pid: number; held: boolean }[]>`
        select pg_backend_pid() as pid, case
          when exists (
            select 1 from pg_locks
            where locktype = 'advisory' and pid = pg_backend_pid() and granted
              and classid = ${LOCK_NAMESPACE}::oid and objid = ${key}::oid and objsubid = 2)
          then true
          else pg_try_advisory_lock(${LOCK_NAMESPACE}, ${key})
        end as held`;
      if (row!.pid !== session) {
        // A new session (the first, or after a reconnect). Unknown before PostgreSQL 14: the lock then relies on
        // TCP keepalive to notice a vanished machine.
        session = row!.pid;
        await conn`select set_config('idle_session_timeout', ${String(Math.ceil(options.idleCutoffMs))}, false)`.catch(
          () => {},
        );
      }
      holding = row!.held;
      return holding;
    } catch (error) {
      if (holding) log.warn("lost the lock: the database does not answer", { key, error: (error as Error).message });
      holding = false;
      return false;
    }
  }

  async function close(unlock: boolean): Promise<void> {
    // For good: a hold() racing the stop (its caller awaited something first) must not take the lock again on a
    // fresh connection that nobody would ever close.
    closed = true;
    await pending;
    const c = conn;
    conn = null;
    session = null;
    if (!c) return;
    if (unlock && holding) await c`select pg_advisory_unlock(${LOCK_NAMESPACE}, ${key})`.catch(() => {});
    holding = false;
    await c.end({ timeout: unlock ? 2 : 0 }).catch(() => {});
  }

  return {
    hold() {
      if (closed) return Promise.resolve(false);
      if (alone) return Promise.resolve(true);
      pending ??= check().finally(() => {
        pending = null;
      });
      return pending;
    },
    release: () => close(true),
    abandon: () => close(false),
  };
}
