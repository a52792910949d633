import type { Sql, Tx } from "../../db/client.ts";
import type { DurationDays } from "../../lib/durations.ts";
import { maskKey } from "../../lib/keys.ts";
import { log } from "../../lib/log.ts";
import type { ShopDeps } from "../deps.ts";
import type { Settings } from "../settings/settings.ts";
import { actor, recordKeyEvent } from "./events.ts";
import { clearHwid, type Keys } from "./keys.ts";

/** A key as its buyer acts on it in the bot: what the renewal and reset screens show and check. */
export type OwnedKey = {
  id: number;
  key: string;
  productId: number;
  productName: string;
  days: DurationDays;
  /** Days renewals added before the first activation (the clock then runs `days + renewedDays`). */
  renewedDays: number;
  hwid: string | null;
  expiresAt: Date | null;
  bannedAt: Date | null;
  /** When the buyer last reset its HWID themselves (admin resets do not count). */
  buyerResetAt: Date | null;
};

type OwnedKeyRow = {
  id: string;
  key: string;
  product_id: string;
  product_name: string;
  days: number;
  renewed_days: number;
  hwid: string | null;
  expires_at: Date | null;
  banned_at: Date | null;
  buyer_reset_at: Date | null;
};

const toOwnedKey = (r: OwnedKeyRow): OwnedKey => ({
  id: Number(r.id),
  key: r.key,
  productId: Number(r.product_id),
  productName: r.product_name,
  days: r.days as DurationDays,
  renewedDays: r.renewed_days,
  hwid: r.hwid,
  expiresAt: r.expires_at,
  bannedAt: r.banned_at,
  buyerResetAt: r.buyer_reset_at,
});

/**
 * The key `keyId` if this user owns it: sold to them (bought — the key names its order — or given to them), else
 * null. Every buyer action starts here, so a forged button naming somebody else's key finds nothing. `lock` takes
 * the key's row lock for the caller's transaction.
 */
export async function ownedKey(
  sql: Sql | Tx,
  userId: number,
  keyId: number,
  options: { lock?: boolean } = {},
): Promise<OwnedKey | null> {
  const [row] = await sql<OwnedKeyRow[]>`
    select k.id, k.key, k.product_id, p.name as product_name, k.days, k.renewed_days, k.hwid, k.expires_at,
           k.banned_at, k.buyer_reset_at
    from keys k join products p on p.id = k.product_id
    where k.id = ${keyId} and k.state = 'sold'
      and (k.buyer_id = ${userId} or k.order_id in (select id from orders where user_id = ${userId}))
    ${options.lock ? sql`for update of k` : sql``}`;
  return row ? toOwnedKey(row) : null;
}

/** Whether the buyer may reset this key's HWID by themselves at all (the button is shown): see resetHwid. */
export function canBuyerReset(key: Pick<OwnedKey, "expiresAt" | "bannedAt">, settings: Settings): boolean {
  return settings.hwidResetCooldownDays > 0 && key.bannedAt === null && key.expiresAt !== null;
}

/** When the buyer's next reset of this key becomes possible; null when it is possible now. */
export function nextBuyerReset(
  key: Pick<OwnedKey, "buyerResetAt">,
  cooldownDays: number,
  now = new Date(),
): Date | null {
  if (!key.buyerResetAt) return null;
  const next = new Date(key.buyerResetAt.getTime() + cooldownDays * 86_400_000);
  return next.getTime() > now.getTime() ? next : null;
}

/** What the buyer's «Сбросить привязку» came to. */
export type BuyerReset =
  /** The HWID is cleared: the next loader to call binds, the expiry is as it was. `nextAt`: the next reset's time. */
  | { kind: "reset"; key: OwnedKey; nextAt: Date }
  /** Inside the cooldown: possible again at `nextAt`. */
  | { kind: "cooldown"; key: OwnedKey; nextAt: Date }
  /** The setting is 0: buyers cannot reset (the button is hidden, the press is an old one). */
  | { kind: "off" }
  /** Not bound to any PC (an admin reset it, or the buyer did and no PC has called since): nothing to reset. */
  | { kind: "not_bound"; key: OwnedKey }
  /** Never activated: it binds to the first PC anyway. */
  | { kind: "not_activated"; key: OwnedKey }
  | { kind: "banned"; key: OwnedKey }
  /** No such key of this buyer's: a stale or forged button. */
  | { kind: "not_yours" };

/**
 * What a buyer does to their own key in the bot, beside renewing it (orders/renewals.ts): moving it to a new PC.
 */
export function createKeySelfService(
  deps: ShopDeps,
  options: { keys: Pick<Keys, "announce">; settings: { get(): Promise<Settings> } },
) {
  const { sql } = deps;

  /** The key if this user owns it (see ownedKey). */
  function owned(userId: number, keyId: number): Promise<OwnedKey | null> {
    return ownedKey(sql, userId, keyId);
  }

  /**
   * The buyer's own HWID reset: the key's HWID is cleared and its expiry kept, as the admin's reset does, at most
   * once per `hwid_reset_cooldown_days`. Checked and done under the key's row lock, so two presses at once (or two
   * devices) reset once and the second one hears the cooldown. The reset is on the key's timeline (by the buyer) and
   * in the buyer's log, and every process forgets the cached answer at once.
   */
  async function resetHwid(userId: number, keyId: number): Promise<BuyerReset> {
    const { hwidResetCooldownDays: cooldown } = await options.settings.get();
    const result = await sql.begin(async (tx): Promise<BuyerReset> => {
      const key = await ownedKey(tx, userId, keyId, { lock: true });
      if (!key) return { kind: "not_yours" };
      if (cooldown === 0) return { kind: "off" };
      if (key.bannedAt) return { kind: "banned", key };
      if (!key.expiresAt) return { kind: "not_activated", key };
      const wait = nextBuyerReset(key, cooldown);
      if (wait) return { kind: "cooldown", key, nextAt: wait };
      if (key.hwid === null) return { kind: "not_bound", key };
      const [stamped] = await tx<{ at: Date }[]>`
        update keys set buyer_reset_at = now() where id = ${key.id} returning buyer_reset_at as at`;
      await clearHwid(tx, key.id, actor.buyer(userId));
      await tx`
        insert into user_events (user_id, kind, detail)
        values (${userId}, 'hwid_reset', ${tx.json({ keyId: key.id, uuid: key.hwid })})`;
      const at = stamped!.at;
      return {
        kind: "reset",
        key: { ...key, hwid: null, buyerResetAt: at },
        nextAt: new Date(at.getTime() + cooldown * 86_400_000),
      };
    });
    if (result.kind === "reset") {
      await options.keys.announce([result.key.key]);
      log.info("hwid reset by the buyer", { key: maskKey(result.key.key), userId });
    }
    return result;
  }

  return { owned, resetHwid };
}

export type KeySelfService = ReturnType<typeof createKeySelfService>;

/** Records a renewal on the key's timeline (kept here beside the key's other buyer-made lines). */
export async function recordRenewal(
  tx: Tx,
  keyId: number,
  userId: number,
  details: { orderId: number; days: number; expiresAt: string | null; renewedDays: number },
): Promise<void> {
  await recordKeyEvent(tx, keyId, "renewed", actor.buyer(userId), details);
}
