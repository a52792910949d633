import type { Tx } from "../../db/client.ts";
import type { DurationDays } from "../../lib/durations.ts";
import type { ShopDeps } from "../deps.ts";

/**
 * The outbox of purchases to hand to buyers. A row is written in the same transaction that sells the key, so a
 * payment that committed is never forgotten, whatever happens to the process afterwards; the delivery job claims
 * rows with SKIP LOCKED, sends them and records the outcome.
 */
export type DeliveryStatus = "pending" | "sent" | "blocked" | "failed";

/** One claimed delivery with everything needed to send it. */
export type DeliveryWork = {
  id: number;
  orderId: number;
  userId: number;
  /** Attempts including this one. */
  attempts: number;
  /** The sold key; null only if the data is broken (a delivery is only written together with a sold key). */
  key: string | null;
  productId: number;
  productName: string;
  days: DurationDays;
  build: { path: string; name: string; sha256: string; fileId: string | null } | null;
  /**
   * A renewal order's message instead of a purchase: the renewed key as it is now — its expiry (null: not activated
   * yet, and `totalDays` from the first activation) and whether it is banned.
   */
  renewal: { expiresAt: Date | null; totalDays: number; banned: boolean } | null;
};

export type DeliveryView = {
  id: number;
  orderId: number;
  userId: number;
  username: string | null;
  productName: string;
  days: DurationDays;
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
  createdAt: Date;
  sentAt: Date | null;
};

/** Writes the outbox row for a paid order; call it inside the transaction that sold the key. Idempotent per order. */
export async function enqueueDelivery(tx: Tx, orderId: number, userId: number): Promise<void> {
  await tx`
    insert into deliveries (order_id, user_id) values (${orderId}, ${userId})
    on conflict (order_id) do nothing`;
}

type WorkRow = {
  id: string;
  order_id: string;
  user_id: string;
  attempts: number;
  key: string | null;
  product_id: string;
  product_name: string;
  days: number;
  build_path: string | null;
  build_name: string | null;
  build_sha256: string | null;
  build_file_id: string | null;
  kind: "purchase" | "renewal";
  renewed_expires_at: Date | null;
  renewed_total_days: number | null;
  renewed_banned: boolean | null;
};

type ViewRow = {
  id: string;
  order_id: string;
  user_id: string;
  username: string | null;
  product_name: string;
  days: number;
  status: DeliveryStatus;
  attempts: number;
  last_error: string | null;
  created_at: Date;
  sent_at: Date | null;
};

const toView = (r: ViewRow): DeliveryView => ({
  id: Number(r.id),
  orderId: Number(r.order_id),
  userId: Number(r.user_id),
  username: r.username,
  productName: r.product_name,
  days: r.days as DurationDays,
  status: r.status,
  attempts: r.attempts,
  lastError: r.last_error,
  createdAt: r.created_at,
  sentAt: r.sent_at,
});

const clipError = (error: string) => error.slice(0, 500);

export function createDeliveries(deps: ShopDeps) {
  const { sql } = deps;
  const listeners = new Set<() => void>();

  /** Tells the delivery job in this process that work is waiting, so it does not sit out its poll interval. */
  function wake(): void {
    for (const listener of listeners) listener();
  }

  function onQueued(listener: () => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /**
   * Claims up to `limit` due deliveries. A claim is a lease: the row's next attempt moves `leaseMs` ahead, so a
   * process that dies mid-send leaves it to be picked up again once the lease runs out, and SKIP LOCKED keeps two
   * workers from claiming the same row.
   */
  async function claimDue(limit: number, leaseMs: number): Promise<DeliveryWork[]> {
    const rows = await sql<WorkRow[]>`
      with claimed as (
        update deliveries d
        set attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => ${leaseMs / 1000})
        where d.id in (
          select id from deliveries
          where status = 'pending' and next_attempt_at <= now()
          order by next_attempt_at, id
          limit ${limit}
          for update skip locked)
        returning d.id, d.order_id, d.user_id, d.attempts)
      select c.id, c.order_id, c.user_id, c.attempts, coalesce(rk.key, k.key) as key, o.product_id,
             p.name as product_name, o.days, p.build_path, p.build_name, p.build_sha256, p.build_file_id, o.kind,
             rk.expires_at as renewed_expires_at, rk.days + rk.renewed_days as renewed_total_days,
             rk.banned_at is not null as renewed_banned
      from claimed c
      join orders o on o.id = c.order_id
      join products p on p.id = o.product_id
      -- A purchase's key points at its order; a renewal's order points at its key.
      left join keys k on k.order_id = c.order_id and k.state = 'sold' and o.kind = 'purchase'
      left join keys rk on rk.id = o.key_id
      order by c.id`;
    return rows.map((r) => ({
      id: Number(r.id),
      orderId: Number(r.order_id),
      userId: Number(r.user_id),
      attempts: r.attempts,
      key: r.key,
      productId: Number(r.product_id),
      productName: r.product_name,
      days: r.days as DurationDays,
      build:
        r.build_path && r.build_name && r.build_sha256
          ? { path: r.build_path, name: r.build_name, sha256: r.build_sha256, fileId: r.build_file_id }
          : null,
      renewal:
        r.kind === "renewal"
          ? {
              expiresAt: r.renewed_expires_at,
              totalDays: r.renewed_total_days ?? r.days,
              banned: r.renewed_banned === true,
            }
          : null,
    }));
  }

  /**
   * The buyer has the key: the delivery is done and the order delivered, atomically in one statement. A buyer
   * marked as having blocked the bot evidently has not (an admin's retry got through): the mark goes.
   */
  async function markSent(work: DeliveryWork, detail: { document: boolean }): Promise<void> {
    const logged = work.renewal ? { ...detail, renewal: true } : detail;
    await sql`
      with sent as (
        update deliveries set status = 'sent', sent_at = now(), last_error = null
        where id = ${work.id} and status = 'pending' returning id),
      delivered as (
        update orders set status = 'delivered', delivered_at = now(), updated_at = now()
        where id = ${work.orderId} and status = 'paid' and exists (select 1 from sent) returning id),
      reachable as (
        update bot_users set blocked_at = null
        where telegram_id = ${work.userId} and blocked_at is not null and exists (select 1 from sent) returning 1)
      insert into user_events (user_id, kind, detail)
      select ${work.userId}, 'order_delivered',
             ${sql.json({ orderId: work.orderId, ...logged, attempts: work.attempts })}
      from sent`;
  }

  /**
   * Tries again later. `countAttempt: false` undoes the claim's increment, for waits that say nothing about the
   * delivery itself (Telegram's rate limit, a bot token not set yet).
   */
  async function reschedule(
    work: DeliveryWork,
    delayMs: number,
    error: string,
    options: { countAttempt: boolean },
  ): Promise<void> {
    await sql`
      update deliveries
      set next_attempt_at = now() + make_interval(secs => ${delayMs / 1000}), last_error = ${clipError(error)},
          attempts = attempts - ${options.countAttempt ? 0 : 1}
      where id = ${work.id} and status = 'pending'`;
  }

  /** Telegram said 403: the buyer blocked the bot. Stop trying; the admin sees it, and it resumes if they return. */
  async function markBlocked(work: DeliveryWork, error: string): Promise<void> {
    await sql.begin(async (tx) => {
      await tx`
        update deliveries set status = 'blocked', last_error = ${clipError(error)}
        where id = ${work.id} and status = 'pending'`;
      await tx`update bot_users set blocked_at = coalesce(blocked_at, now()) where telegram_id = ${work.userId}`;
      await tx`
        insert into user_events (user_id, kind, detail)
        values (${work.userId}, 'delivery_blocked', ${tx.json({ orderId: work.orderId, error: clipError(error) })})`;
    });
  }

  /** Gave up after many attempts: the order stays paid and shows up for the admin to deliver by hand. */
  async function markFailed(work: DeliveryWork, error: string): Promise<void> {
    await sql.begin(async (tx) => {
      await tx`
        update deliveries set status = 'failed', last_error = ${clipError(error)}
        where id = ${work.id} and status = 'pending'`;
      await tx`
        insert into user_events (user_id, kind, detail)
        values (${work.userId}, 'delivery_failed',
                ${tx.json({ orderId: work.orderId, attempts: work.attempts, error: clipError(error) })})`;
    });
  }

  /**
   * Puts blocked deliveries back in the queue for buyers who wrote to the bot again (writing clears their
   * blocked_at), so they receive what they paid for without anyone's help. Returns how many were requeued.
   */
  async function requeueUnblocked(): Promise<number> {
    const rows = await sql`
      update deliveries d set status = 'pending', next_attempt_at = now(), attempts = 0
      from bot_users u
      where d.status = 'blocked' and u.telegram_id = d.user_id and u.blocked_at is null
      returning d.id`;
    if (rows.length > 0) wake();
    return rows.length;
  }

  /** An admin's "try again" for a blocked or failed delivery. Returns false when there is nothing to retry. */
  async function retry(orderId: number): Promise<boolean> {
    const rows = await sql`
      update deliveries set status = 'pending', next_attempt_at = now(), attempts = 0
      where order_id = ${orderId} and status in ('blocked', 'failed')
      returning id`;
    if (rows.length > 0) wake();
    return rows.length > 0;
  }

  async function byOrder(orderId: number): Promise<DeliveryView | null> {
    const [row] = await sql<ViewRow[]>`
      select d.*, u.username, p.name as product_name, o.days
      from deliveries d join orders o on o.id = d.order_id join products p on p.id = o.product_id
      join bot_users u on u.telegram_id = d.user_id
      where d.order_id = ${orderId}`;
    return row ? toView(row) : null;
  }

  /** Deliveries that need an admin (blocked or failed), newest first. */
  async function needingAttention(limit = 100): Promise<DeliveryView[]> {
    const rows = await sql<ViewRow[]>`
      select d.*, u.username, p.name as product_name, o.days
      from deliveries d join orders o on o.id = d.order_id join products p on p.id = o.product_id
      join bot_users u on u.telegram_id = d.user_id
      where d.status in ('blocked', 'failed')
      order by d.created_at desc limit ${limit}`;
    return rows.map(toView);
  }

  return {
    wake,
    onQueued,
    claimDue,
    markSent,
    reschedule,
    markBlocked,
    markFailed,
    requeueUnblocked,
    retry,
    byOrder,
    needingAttention,
  };
}

export type Deliveries = ReturnType<typeof createDeliveries>;
