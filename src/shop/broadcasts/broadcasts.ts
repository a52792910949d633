import { CHANNELS } from "../../cache/channels.ts";
import type { Sql, Tx } from "../../db/client.ts";
import { LOCKS, type SessionLock, sessionLock } from "../../db/session-lock.ts";
import { log } from "../../lib/log.ts";
import type { ShopDeps } from "../deps.ts";
import { invalid, notFound } from "../errors.ts";

export type BroadcastStatus = "pending" | "running" | "done" | "cancelled";

export type BroadcastProgress = {
  total: number;
  pending: number;
  sent: number;
  blocked: number;
  failed: number;
  /** The sender died (or timed out) with the message on its way: it may have arrived, and is not sent again. */
  unconfirmed: number;
  cancelled: number;
};

export type Broadcast = {
  id: number;
  text: string;
  status: BroadcastStatus;
  createdBy: string;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  progress: BroadcastProgress;
};

/** One message of a broadcast to one user, claimed by the sending job `sender`. */
export type ClaimedRecipient = { broadcastId: number; userId: number; text: string; attempts: number; sender: string };

export const MAX_BROADCAST_TEXT = 4096;

/** Telegram's and the database's limit count characters (code points), not UTF-16 units. */
export function broadcastTextProblem(text: string): string | null {
  const length = [...text.trim()].length;
  if (length === 0) return "Текст рассылки пуст";
  if (length > MAX_BROADCAST_TEXT) return `Текст рассылки длиннее ${MAX_BROADCAST_TEXT} символов`;
  return null;
}

type BroadcastRow = {
  id: string;
  text: string;
  status: BroadcastStatus;
  created_by: string;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  total: string;
  pending: string;
  sent: string;
  blocked: string;
  failed: string;
  unconfirmed: string;
  cancelled: string;
};

const toBroadcast = (r: BroadcastRow): Broadcast => ({
  id: Number(r.id),
  text: r.text,
  status: r.status,
  createdBy: r.created_by,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  progress: {
    total: Number(r.total),
    pending: Number(r.pending),
    sent: Number(r.sent),
    blocked: Number(r.blocked),
    failed: Number(r.failed),
    unconfirmed: Number(r.unconfirmed),
    cancelled: Number(r.cancelled),
  },
});

/**
 * Messages to every bot user. A broadcast and its recipients are rows in Postgres, so a restart loses nothing: the
 * job picks up the recipients still pending. Each recipient goes pending → sent | blocked | failed | unconfirmed |
 * cancelled once (a message that was on its way when the broadcast was cancelled, or its sender lost, still counts
 * as sent when Telegram's answer comes).
 */
export function createBroadcasts(deps: ShopDeps) {
  const { sql, cache } = deps;

  const selectBroadcasts = () => sql`
    select b.*,
      count(r.user_id) as total,
      count(r.user_id) filter (where r.status = 'pending') as pending,
      count(r.user_id) filter (where r.status = 'sent') as sent,
      count(r.user_id) filter (where r.status = 'blocked') as blocked,
      count(r.user_id) filter (where r.status = 'failed') as failed,
      count(r.user_id) filter (where r.status = 'unconfirmed') as unconfirmed,
      count(r.user_id) filter (where r.status = 'cancelled') as cancelled
    from broadcasts b left join broadcast_recipients r on r.broadcast_id = b.id`;

  /** How many users a broadcast created now would reach: everyone who has not blocked the bot. */
  async function audience(): Promise<number> {
    const [row] = await sql<{ n: string }[]>`select count(*) as n from bot_users where blocked_at is null`;
    return Number(row!.n);
  }

  async function create(input: { text: string; createdBy: string }): Promise<Broadcast> {
    const problem = broadcastTextProblem(input.text);
    if (problem) throw invalid(problem, "text");
    const text = input.text.trim();
    const id = await sql.begin(async (tx) => {
      const [row] = await tx<{ id: string }[]>`
        insert into broadcasts (text, created_by) values (${text}, ${input.createdBy.slice(0, 200)}) returning id`;
      const inserted = await tx`
        insert into broadcast_recipients (broadcast_id, user_id)
        select ${row!.id}, telegram_id from bot_users where blocked_at is null`;
      if (inserted.count === 0) throw invalid("Некому отправлять: у бота ещё нет пользователей", "text");
      return Number(row!.id);
    });
    await cache.publish(CHANNELS.broadcasts, String(id));
    log.info("broadcast created", { broadcastId: id, by: input.createdBy });
    return (await byId(id))!;
  }

  async function byId(id: number): Promise<Broadcast | null> {
    const [row] = await sql<BroadcastRow[]>`${selectBroadcasts()} where b.id = ${id} group by b.id`;
    return row ? toBroadcast(row) : null;
  }

  async function recent(limit = 10): Promise<Broadcast[]> {
    const rows = await sql<BroadcastRow[]>`${selectBroadcasts()} group by b.id order by b.id desc limit ${limit}`;
    return rows.map(toBroadcast);
  }

  /** Stops a broadcast: recipients not yet messaged are never messaged. A message already on its way still lands. */
  async function cancel(id: number): Promise<Broadcast> {
    const exists = await sql`select 1 from broadcasts where id = ${id}`;
    if (exists.length === 0) throw notFound("Рассылка не найдена");
    // Recipients first, then the broadcast: the same order as claim() locks them, so the two never deadlock.
    await sql.begin(async (tx) => {
      await tx`update broadcast_recipients set status = 'cancelled' where broadcast_id = ${id} and status = 'pending'`;
      await tx`
        update broadcasts set status = 'cancelled', finished_at = now()
        where id = ${id} and status in ('pending', 'running')`;
    });
    log.info("broadcast cancelled", { broadcastId: id });
    return (await byId(id))!;
  }

  /**
   * Hands the sender `sender` up to `limit` due recipients, held for `leaseMs` (renewed by `renewClaims` while the
   * sender lives) so no other sender takes them meanwhile; SKIP LOCKED gives concurrent senders different rows.
   *
   * First, recipients whose attempt started and whose hold then ran out are resolved: their sender died between
   * recording the attempt and recording Telegram's answer, so the message may or may not have arrived. Telegram has
   * no idempotency key; they become `unconfirmed` and are not sent again — nobody gets a broadcast twice, and at
   * most the sends that were in flight (the sender's concurrency) end up there.
   */
  async function claim(limit: number, leaseMs: number, sender: string): Promise<ClaimedRecipient[]> {
    return await sql.begin(async (tx) => {
      const interrupted = await tx<{ broadcast_id: string }[]>`
        update broadcast_recipients set status = 'unconfirmed', claimed_by = null,
          last_error = 'interrupted mid-send: delivery unknown, not sent again'
        where (broadcast_id, user_id) in (
          select broadcast_id, user_id from broadcast_recipients
          where status = 'pending' and attempt_started_at is not null and next_attempt_at <= now()
          for update skip locked)
        returning broadcast_id`;
      if (interrupted.length > 0) {
        log.warn("broadcast recipients interrupted mid-send, not sent again", { count: interrupted.length });
        // They may have been a broadcast's last: no batch of it will come to the sender to finish it.
        await finishWhereDone(tx, [...new Set(interrupted.map((r) => Number(r.broadcast_id)))]);
      }
      const rows = await tx<{ broadcast_id: string; user_id: string; attempts: number }[]>`
        select r.broadcast_id, r.user_id, r.attempts
        from broadcast_recipients r join broadcasts b on b.id = r.broadcast_id
        where r.status = 'pending' and r.next_attempt_at <= now() and b.status in ('pending', 'running')
        order by r.broadcast_id, r.next_attempt_at, r.user_id
        limit ${limit}
        for update of r skip locked`;
      if (rows.length === 0) return [];
      await tx`
        update broadcast_recipients
        set claimed_by = ${sender}, next_attempt_at = now() + make_interval(secs => ${leaseMs / 1000})
        where (broadcast_id, user_id) in (select * from unnest(
          ${rows.map((r) => r.broadcast_id)}::bigint[], ${rows.map((r) => r.user_id)}::bigint[]))`;
      const ids = [...new Set(rows.map((r) => r.broadcast_id))];
      await tx`
        update broadcasts set status = 'running', started_at = now()
        where id in ${tx(ids)} and status = 'pending'`;
      const broadcasts = await tx<
        { id: string; text: string }[]
      >`select id, text from broadcasts where id in ${tx(ids)}`;
      const texts = new Map(broadcasts.map((b) => [b.id, b.text]));
      return rows.map((r) => ({
        broadcastId: Number(r.broadcast_id),
        userId: Number(r.user_id),
        text: texts.get(r.broadcast_id)!,
        attempts: r.attempts,
        sender,
      }));
    });
  }

  /** Extends the sender's hold on recipients it still has in hand: a live sender never loses them to a lease. */
  async function renewClaims(recipients: ClaimedRecipient[], leaseMs: number): Promise<void> {
    if (recipients.length === 0) return;
    await sql`
      update broadcast_recipients set next_attempt_at = now() + make_interval(secs => ${leaseMs / 1000})
      where status = 'pending' and claimed_by = ${recipients[0]!.sender} and (broadcast_id, user_id) in (
        select * from unnest(
          ${recipients.map((r) => r.broadcastId)}::bigint[], ${recipients.map((r) => r.userId)}::bigint[]))`;
  }

  /**
   * Records that the message is leaving now — the sender calls it right before the request. From here until the
   * answer is recorded, a crash leaves the recipient unconfirmed (see claim). False when it must not be sent: the
   * broadcast was cancelled, or the sender's hold ran out and the recipient may be another sender's now.
   */
  async function startAttempt(r: ClaimedRecipient): Promise<boolean> {
    const rows = await sql`
      update broadcast_recipients set attempts = attempts + 1, attempt_started_at = now()
      where broadcast_id = ${r.broadcastId} and user_id = ${r.userId} and status = 'pending'
        and claimed_by = ${r.sender} and attempt_started_at is null and next_attempt_at > now()
      returning 1`;
    return rows.length > 0;
  }

  /** Telegram accepted the message: recorded at once, so no crash after this point can count it failed or resend it. */
  async function markSent(r: ClaimedRecipient): Promise<void> {
    // A cancel (or a sender that took this one for interrupted) may have landed while the message was on its way;
    // it did arrive, so it counts as sent.
    await sql`
      update broadcast_recipients
      set status = 'sent', sent_at = now(), last_error = null, attempt_started_at = null, claimed_by = null
      where broadcast_id = ${r.broadcastId} and user_id = ${r.userId}
        and status in ('pending', 'cancelled', 'unconfirmed')`;
  }

  /** Telegram said 403: the user blocked the bot. They are skipped by later broadcasts until they write again. */
  async function markBlocked(r: ClaimedRecipient, error: string): Promise<void> {
    await sql.begin(async (tx) => {
      await tx`
        update broadcast_recipients
        set status = 'blocked', last_error = ${error.slice(0, 500)}, attempt_started_at = null, claimed_by = null
        where broadcast_id = ${r.broadcastId} and user_id = ${r.userId}`;
      await tx`update bot_users set blocked_at = coalesce(blocked_at, now()) where telegram_id = ${r.userId}`;
    });
  }

  /** A final failure for this recipient: the retry cap was reached, or Telegram refused it for good (400). */
  async function markFailed(r: ClaimedRecipient, error: string): Promise<void> {
    await sql`
      update broadcast_recipients
      set status = 'failed', last_error = ${error.slice(0, 500)}, attempt_started_at = null, claimed_by = null
      where broadcast_id = ${r.broadcastId} and user_id = ${r.userId}`;
  }

  /**
   * The request was sent and its fate is unknown (it timed out): like an interrupted attempt, not sent again.
   */
  async function markUnconfirmed(r: ClaimedRecipient, error: string): Promise<void> {
    await sql`
      update broadcast_recipients
      set status = 'unconfirmed', last_error = ${error.slice(0, 500)}, claimed_by = null
      where broadcast_id = ${r.broadcastId} and user_id = ${r.userId} and status in ('pending', 'cancelled')`;
  }

  /**
   * The attempt failed in a way worth retrying (429, network, 5xx): try again after delayMs, by whichever sender
   * claims it then. With countAttempt false (no bot token yet; or the request never left because Telegram asked
   * to pause meanwhile) the attempt does not count towards the retry cap.
   */
  async function retryLater(r: ClaimedRecipient, delayMs: number, error: string, countAttempt = true): Promise<void> {
    await sql`
      update broadcast_recipients set
        next_attempt_at = now() + make_interval(secs => ${delayMs / 1000}),
        last_error = ${error.slice(0, 500)},
        attempts = attempts - ${countAttempt ? 0 : 1},
        attempt_started_at = null,
        claimed_by = null
      where broadcast_id = ${r.broadcastId} and user_id = ${r.userId} and status = 'pending'
        and claimed_by = ${r.sender}`;
  }

  /**
   * Gives claimed recipients that were never attempted back to the queue (the sender is stopping, or Telegram asked
   * it to pause): due again after delayMs, for any sender.
   */
  async function release(recipients: ClaimedRecipient[], delayMs = 0): Promise<void> {
    if (recipients.length === 0) return;
    await sql`
      update broadcast_recipients
      set next_attempt_at = now() + make_interval(secs => ${delayMs / 1000}), claimed_by = null
      where status = 'pending' and attempt_started_at is null and claimed_by = ${recipients[0]!.sender}
        and (broadcast_id, user_id) in (select * from unnest(
          ${recipients.map((r) => r.broadcastId)}::bigint[], ${recipients.map((r) => r.userId)}::bigint[]))`;
  }

  /** The one-sender-per-shop lock: a Postgres session lock, so it works with Redis down and frees when we die. */
  function senderLock(idleCutoffMs: number): SessionLock {
    return sessionLock(sql, deps.config.databaseUrl, LOCKS.broadcastSender, { idleCutoffMs });
  }

  /** Marks these broadcasts done where nobody is left pending; returns how many finished. */
  async function finishWhereDone(db: Sql | Tx, ids: number[]): Promise<number> {
    const rows = await db<{ id: string }[]>`
      update broadcasts b set status = 'done', finished_at = now()
      where b.id = any(${ids}::bigint[]) and b.status in ('pending', 'running')
        and not exists (select 1 from broadcast_recipients r where r.broadcast_id = b.id and r.status = 'pending')
      returning b.id`;
    for (const row of rows) log.info("broadcast finished", { broadcastId: Number(row.id) });
    return rows.length;
  }

  /**
   * Calls `listener` when a broadcast is created in any process, so a sender starts at once instead of at its next
   * poll. Returns a function that stops listening.
   */
  function onCreated(listener: () => void): Promise<() => Promise<void>> {
    return cache.subscribe(CHANNELS.broadcasts, () => listener());
  }

  /** Marks the broadcast done once nobody is left pending. */
  async function finishIfDone(broadcastId: number): Promise<boolean> {
    return (await finishWhereDone(sql, [broadcastId])) > 0;
  }

  return {
    audience,
    create,
    byId,
    recent,
    cancel,
    claim,
    renewClaims,
    startAttempt,
    markSent,
    markBlocked,
    markFailed,
    markUnconfirmed,
    retryLater,
    release,
    finishIfDone,
    senderLock,
    onCreated,
  };
}

export type Broadcasts = ReturnType<typeof createBroadcasts>;
