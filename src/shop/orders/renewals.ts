import type { Tx } from "../../db/client.ts";
import { type DurationDays, isDuration } from "../../lib/durations.ts";
import { log } from "../../lib/log.ts";
import type { ShopDeps } from "../deps.ts";
import { invalid } from "../errors.ts";
import { type OwnedKey, ownedKey, recordRenewal } from "../keys/self-service.ts";
import type { Price } from "../promos/discount.ts";
import { priceAfterCode } from "../promos/promos.ts";
import { type Order, type OrderRow, type PromoRefused, toOrder } from "./orders.ts";

/** A duration a key can be renewed for: the product's price for it (no stock is needed: no key is sold). */
export type RenewalOffer = { days: DurationDays; rub: number; stars: number | null };

/** Why a key cannot be renewed by this buyer right now. */
export type RenewalRefusal =
  /** No such key of this buyer's: a stale or forged button. */
  | { kind: "not_yours" }
  | { kind: "banned"; key: OwnedKey }
  /** The product is archived, or (for one duration) that duration has no price any more. */
  | { kind: "unavailable"; key: OwnedKey };

export type PlaceRenewalResult =
  /** A new renewal order, or the buyer's unpaid one for the same key, duration and price. */
  | { kind: "placed" | "existing"; order: Order; key: OwnedKey }
  | RenewalRefusal
  | { kind: "price_changed"; rub: number; key: OwnedKey }
  | { kind: "promo_refused"; verdict: PromoRefused };

/** place()'s lock space is "ORDR"; renewals take turns per buyer and key in their own. */
const PLACE_RENEWAL_LOCK = 0x524e574c; // "RNWL"

/** The renewal order of `keyId` as the key's owner sees it: which durations can be paid, at what price. */
async function offersOf(db: Tx | ShopDeps["sql"], productId: number): Promise<RenewalOffer[] | null> {
  const rows = await db<{ days: number; rub: number; stars: number | null; archived: boolean }[]>`
    select pr.days, pr.rub, pr.stars, p.archived_at is not null as archived
    from products p left join prices pr on pr.product_id = p.id and pr.rub > 0
    where p.id = ${productId}
    order by pr.days`;
  if (rows.length === 0 || rows[0]!.archived) return null;
  return rows
    .filter((r) => r.days !== null && isDuration(r.days))
    .map((r) => ({ days: r.days as DurationDays, rub: r.rub, stars: r.stars }));
}

/**
 * What a paid renewal does to its key (docs/panel.md#renewals), inside the payment's transaction with the key's row
 * locked: an activated key that has not expired runs `days` longer; an expired one runs `days` from now and keeps its
 * HWID; one never activated gets `days` more on its duration, and its clock still starts at the first activation.
 * A key banned after the order was placed gets its days all the same — they wait behind the ban — and the payment's
 * caller tells the admins (unban, or refund), so the money is never silently kept for nothing.
 */
export async function applyRenewal(
  tx: Tx,
  order: Order,
): Promise<{ key: string; expiresAt: Date | null; renewedDays: number; banned: boolean }> {
  const [row] = await tx<{ key: string; expires_at: Date | null; renewed_days: number; banned: boolean }[]>`
    update keys set
      expires_at = case when expires_at is null then null
                        else greatest(expires_at, now()) + make_interval(days => ${order.days}) end,
      renewed_days = case when expires_at is null then renewed_days + ${order.days} else renewed_days end
    where id = ${order.keyId!}
    returning key, expires_at, renewed_days, banned_at is not null as banned`;
  if (!row) throw new Error(`renewal order ${order.id} names key ${order.keyId} that is gone`);
  await recordRenewal(tx, order.keyId!, order.userId, {
    orderId: order.id,
    days: order.days,
    expiresAt: row.expires_at?.toISOString() ?? null,
    renewedDays: row.renewed_days,
  });
  return { key: row.key, expiresAt: row.expires_at, renewedDays: row.renewed_days, banned: row.banned };
}

/**
 * Renewals: more days on a key the buyer owns, bought through an order of kind 'renewal' that names the key. It is
 * placed, priced (promo codes included) and paid like a purchase — the same checkout, providers and notification
 * endpoint — but holds no key from stock; its payment is applied by payments.ts through applyRenewal().
 */
export function createRenewals(deps: ShopDeps) {
  const { sql, config } = deps;

  /** The durations this buyer can renew this key for, or why not. */
  async function offers(
    userId: number,
    keyId: number,
  ): Promise<{ kind: "ok"; key: OwnedKey; offers: RenewalOffer[] } | RenewalRefusal> {
    const key = await ownedKey(sql, userId, keyId);
    if (!key) return { kind: "not_yours" };
    if (key.bannedAt) return { kind: "banned", key };
    const list = await offersOf(sql, key.productId);
    if (!list || list.length === 0) return { kind: "unavailable", key };
    return { kind: "ok", key, offers: list };
  }

  /**
   * Confirming a renewal: checks the key is still this buyer's and not banned and the duration still has the price
   * the buyer saw (after the promo code), then places the order — or hands back the buyer's unpaid renewal of the
   * same key and duration at the same terms, so two presses of «Подтвердить» at once (or a second device) place one
   * order: concurrent confirms of one buyer for one key take turns on an advisory lock. An unpaid renewal of the same
   * key and duration at other terms ends (with the code's use it held) in favour of the new one.
   */
  async function place(input: {
    userId: number;
    keyId: number;
    days: number;
    expectedRub?: number;
    promoCode?: string | null | undefined;
  }): Promise<PlaceRenewalResult> {
    if (!isDuration(input.days)) throw invalid("Неверная длительность", "days");
    const days = input.days;
    const result = await sql.begin(async (tx): Promise<PlaceRenewalResult> => {
      await tx`select pg_advisory_xact_lock(${PLACE_RENEWAL_LOCK}, hashtext(${`${input.userId}:${input.keyId}`}))`;
      const key = await ownedKey(tx, input.userId, input.keyId);
      if (!key) return { kind: "not_yours" };
      if (key.bannedAt) return { kind: "banned", key };
      const offer = (await offersOf(tx, key.productId))?.find((o) => o.days === days);
      if (!offer) return { kind: "unavailable", key };
      const [existing] = await tx<OrderRow[]>`
        select o.*, p.name as product_name from orders o join products p on p.id = o.product_id
        where o.user_id = ${input.userId} and o.key_id = ${key.id} and o.kind = 'renewal' and o.days = ${days}
          and o.status = 'pending'
        order by o.id desc limit 1
        for update of o`;
      const list: Price = { rub: offer.rub, stars: offer.stars };
      const priced = await priceAfterCode(tx, {
        code: input.promoCode,
        userId: input.userId,
        productId: key.productId,
        days,
        list,
        replacing: existing ? Number(existing.id) : null,
      });
      if (!priced.ok) return { kind: "promo_refused", verdict: priced };
      const { promo, price } = priced;
      if (input.expectedRub !== undefined && input.expectedRub !== price.rub) {
        return { kind: "price_changed", rub: price.rub, key };
      }
      if (existing) {
        const same =
          existing.amount_rub === price.rub &&
          existing.discount_rub === list.rub - price.rub &&
          existing.stars === price.stars &&
          (existing.promo_code_id === null ? null : Number(existing.promo_code_id)) === (promo?.id ?? null);
        if (same) {
          // Confirming again is the buyer still paying: the payment window runs from now, the link stays.
          const [renewed] = await tx<OrderRow[]>`
            update orders
            set reserved_until = greatest(reserved_until, now() + make_interval(mins => ${config.reservationMinutes})),
                updated_at = now()
            where id = ${existing.id}
            returning *, ${existing.product_name}::text as product_name`;
          return { kind: "existing", order: toOrder(renewed!), key };
        }
        await tx`update orders set status = 'expired', updated_at = now() where id = ${existing.id}`;
        await tx`
          insert into user_events (user_id, kind, detail)
          values (${input.userId}, 'order_replaced', ${tx.json({ orderId: Number(existing.id), newRub: price.rub })})`;
      }
      // `reserved_until` is the payment window here: nothing is held, but a link is not paid forever.
      const [row] = await tx<OrderRow[]>`
        insert into orders (kind, key_id, user_id, product_id, days, amount_rub, discount_rub, stars, promo_code_id,
                            promo_code, reserved_until)
        values ('renewal', ${key.id}, ${input.userId}, ${key.productId}, ${days}, ${price.rub},
                ${list.rub - price.rub}, ${price.stars}, ${promo?.id ?? null}, ${promo?.code ?? null},
                now() + make_interval(mins => ${config.reservationMinutes}))
        returning *, ${key.productName}::text as product_name`;
      const placed = {
        orderId: Number(row!.id),
        keyId: key.id,
        productId: key.productId,
        days,
        rub: price.rub,
        renewal: true,
        ...(promo ? { listRub: list.rub, promoCode: promo.code } : {}),
      };
      await tx`insert into user_events (user_id, kind, detail) values (${input.userId}, 'order_placed', ${tx.json(placed)})`;
      return { kind: "placed", order: toOrder(row!), key };
    });
    if (result.kind === "placed") {
      log.info("renewal order placed", {
        orderId: result.order.id,
        keyId: input.keyId,
        days,
        rub: result.order.amountRub,
        ...(result.order.promoCode ? { promoCode: result.order.promoCode } : {}),
      });
    }
    return result;
  }

  return { offers, place };
}

export type Renewals = ReturnType<typeof createRenewals>;
