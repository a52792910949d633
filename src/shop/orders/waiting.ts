import { invalidateCatalogue } from "../../cache/catalogue.ts";
import { maskKey } from "../../lib/keys.ts";
import { log } from "../../lib/log.ts";
import { plainText } from "../../lib/text.ts";
import type { ShopDeps } from "../deps.ts";
import { allocateKey } from "../keys/keys.ts";
import type { Deliveries } from "./deliveries.ts";
import { type OrderRow, toOrder } from "./orders.ts";
import { sellKey } from "./payments.ts";

/** The longest note kept when an admin closes an order. */
export const MAX_CLOSING_NOTE = 500;

/**
 * An admin's note as it will be stored: trimmed, without control characters (Postgres refuses a NUL in text, and
 * nothing else invisible belongs in a note) — line breaks and tabs stay.
 */
export function closingNote(note: string): string {
  return plainText(note);
}

/**
 * Orders waiting on something: for payment, until their reservation runs out; for a key, after a payment that found
 * none left, until new stock comes or an admin closes them.
 */
export function createWaitingOrders(deps: ShopDeps, options: { deliveries: Deliveries }) {
  const { sql } = deps;
  const { deliveries } = options;

  /**
   * Expires unpaid orders whose reservation has run out and puts their keys back on sale. SKIP LOCKED leaves alone
   * an order that a payment is being applied to right now. Returns how many expired.
   */
  async function expireDue(limit = 500): Promise<number> {
    const expired = await sql.begin(async (tx) => {
      const rows = await tx<{ id: string; user_id: string; renewal: boolean }[]>`
        update orders o set status = 'expired', updated_at = now()
        where o.id in (
          select id from orders
          where status = 'pending' and reserved_until <= now()
          order by reserved_until
          limit ${limit}
          for update skip locked)
        returning o.id, o.user_id, o.kind = 'renewal' as renewal`;
      if (rows.length === 0) return rows;
      const ids = rows.map((r) => r.id);
      // A renewal held no key: its log line must not say one went back on sale.
      const renewals = rows.filter((r) => r.renewal).map((r) => r.id);
      await tx`
        update keys set state = 'available', order_id = null
        where order_id = any(${ids}::bigint[]) and state = 'reserved'`;
      await tx`
        insert into user_events (user_id, kind, detail)
        select t.user_id, 'order_expired',
               jsonb_build_object('orderId', t.order_id)
                 || case when t.order_id = any(${renewals}::bigint[]) then '{"renewal": true}'::jsonb else '{}' end
        from unnest(${rows.map((r) => r.user_id)}::bigint[], ${ids}::bigint[]) as t(user_id, order_id)`;
      return rows;
    });
    if (expired.length > 0) {
      await invalidateCatalogue(deps);
      log.info("unpaid orders expired", { count: expired.length });
    }
    return expired.length;
  }

  /**
   * Serves orders that were paid while no key was left (`paid_no_stock`), oldest first, as soon as keys of their
   * product and duration are back in stock. Returns how many got a key.
   */
  async function fulfilWaiting(limit = 50): Promise<number> {
    const waiting = await sql<{ id: string }[]>`
      select id from orders where status = 'paid_no_stock' order by paid_at, id limit ${limit}`;
    let fulfilled = 0;
    for (const { id } of waiting) {
      const done = await sql.begin(async (tx) => {
        const [row] = await tx<OrderRow[]>`
          select o.*, p.name as product_name from orders o join products p on p.id = o.product_id
          where o.id = ${id} and o.status = 'paid_no_stock' for update of o skip locked`;
        if (!row) return false;
        const order = toOrder(row);
        const key = await allocateKey(tx, order.productId, order.days);
        if (!key) return false;
        await tx`update orders set status = 'paid', updated_at = now() where id = ${order.id}`;
        await sellKey(tx, order, key.id);
        await tx`
          insert into user_events (user_id, kind, detail)
          values (${order.userId}, 'order_fulfilled', ${tx.json({ orderId: order.id, key: maskKey(key.key) })})`;
        return true;
      });
      if (done) {
        fulfilled++;
        log.info("paid_no_stock order served from new stock", { orderId: Number(id) });
      }
    }
    if (fulfilled > 0) {
      deliveries.wake();
      await invalidateCatalogue(deps);
    }
    return fulfilled;
  }

  /**
   * An admin settled a `paid_no_stock` order outside the shop (refunded it, say): close it so new stock is not
   * sent to it. Returns false when the order is not waiting for a key.
   */
  async function closeUnfulfilled(orderId: number, note: string): Promise<boolean> {
    const text = closingNote(note).slice(0, MAX_CLOSING_NOTE) || "closed by an admin";
    return await sql.begin(async (tx) => {
      const [row] = await tx<{ user_id: string }[]>`
        update orders set status = 'failed', failure = ${text}, updated_at = now()
        where id = ${orderId} and status = 'paid_no_stock' returning user_id`;
      if (!row) return false;
      await tx`
        insert into user_events (user_id, kind, detail)
        values (${row.user_id}, 'order_closed', ${tx.json({ orderId, note: text })})`;
      return true;
    });
  }

  return { expireDue, fulfilWaiting, closeUnfulfilled };
}
