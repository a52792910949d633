import type { Sql } from "../db/client.ts";
import { log } from "../lib/log.ts";

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
  /** Gives the lock back at once. */
  release(): Promise<void>;
  /** Drops the lock's connection without unlocking: what the others see when this process is killed. */
  abandon(): Promise<void>;
};

type Reserved = Awaited<ReturnType<Sql["reserve"]>>;

/**
 * A lock held by one process at a time: a PostgreSQL session-level advisory lock on a connection of its own. It
 * lives exactly as long as that connection, so it needs no Redis and no lease to wait out: a process that dies
 * closes its connection and the lock is free at once. A machine that vanishes without closing its sockets is cut
 * off by the server after `idleCutoffMs` of silence (idle_session_timeout), while a live holder checks in more often
 * than that.
 *
 * A pool of one connection (the embedded dev database) cannot spare one; such a shop is a single process, so it
 * is always the holder.
 */
export function sessionLock(sql: Sql, key: number, options: { idleCutoffMs: number }): SessionLock {
  const alone = (sql.options.max ?? 10) <= 1;
  let conn: Reserved | null = null;
  let holding = false;
  // One check at a time: a reserve() waiting for a down database must not pile up behind a timer.
  let pending: Promise<boolean> | null = null;

  async function drop(): Promise<void> {
    const c = conn;
    conn = null;
    holding = false;
    if (c) c.release();
  }

  async function check(): Promise<boolean> {
    try {
      if (!conn) {
        conn = await sql.reserve();
        // Unknown before PostgreSQL 14: the lock then relies on TCP noticing a vanished machine.
        await conn`select set_config('idle_session_timeout', ${String(Math.ceil(options.idleCutoffMs))}, false)`.catch(
          () => {},
        );
      }
      // CASE evaluates in order: a lock already held is not taken a second time (session locks stack).
      const [row] = await conn<{ held: boolean }[]>`
        select case
          when exists (
            select 1 from pg_locks
            where locktype = 'advisory' and pid = pg_backend_pid() and granted
              and classid = ${LOCK_NAMESPACE}::oid and objid = ${key}::oid and objsubid = 2)
          then true
          else pg_try_advisory_lock(${LOCK_NAMESPACE}, ${key})
        end as held`;
      holding = row!.held;
      return holding;
    } catch (error) {
      log.warn("lock check failed; not holding it until the database answers", {
        key,
        error: (error as Error).message,
      });
      await drop();
      return false;
    }
  }

  return {
    hold() {
      if (alone) return Promise.resolve(true);
      pending ??= check().finally(() => {
        pending = null;
      });
      return pending;
    },
    async release() {
      await pending;
      const c = conn;
      if (!c) return;
      try {
        if (holding) await c`select pg_advisory_unlock(${LOCK_NAMESPACE}, ${key})`;
        // The connection goes back to the pool: it must not be cut off there for idling.
        await c`select set_config('idle_session_timeout', '0', false)`.catch(() => {});
      } catch (error) {
        log.warn("lock release failed; it goes with the connection", { key, error: (error as Error).message });
      }
      await drop();
    },
    async abandon() {
      await pending;
      const c = conn;
      if (!c) return;
      // The server ends the session as it would a dead client's: the lock is freed, nothing is unlocked by us.
      await c`select pg_terminate_backend(pg_backend_pid())`.catch(() => {});
      await drop();
    },
  };
}
