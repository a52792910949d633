import type { ShopDeps } from "../deps.ts";

/** A notification from an AnyPay address that the shop refused: a payment that may need the owner. */
export type RefusedNotification = {
  id: number;
  firstAt: Date;
  lastAt: Date;
  tries: number;
  ip: string | null;
  /** Why, in the owner's words (Russian), e.g. «подпись не совпадает — проверьте секретный ключ AnyPay». */
  reason: string;
  payId: string | null;
  transactionId: string | null;
  amount: string | null;
  currency: string | null;
  status: string | null;
};

type Row = {
  id: string;
  first_at: Date;
  last_at: Date;
  tries: number;
  ip: string | null;
  reason: string;
  pay_id: string | null;
  transaction_id: string | null;
  amount: string | null;
  currency: string | null;
  status: string | null;
};

/** Fields as received can be anything: keep a short printable prefix of what is a string, nothing else. */
function clip(value: unknown, max: number): string | null {
  if (typeof value !== "string") return null;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is dropped
  const text = value.replace(/[\u0000-\u001f\u007f]/g, "").slice(0, max);
  return text === "" ? null : text;
}

function toRefused(r: Row): RefusedNotification {
  return {
    id: Number(r.id),
    firstAt: r.first_at,
    lastAt: r.last_at,
    tries: r.tries,
    ip: r.ip,
    reason: r.reason,
    payId: r.pay_id,
    transactionId: r.transaction_id,
    amount: r.amount,
    currency: r.currency,
    status: r.status,
  };
}

/** How long a refused notification stays among the notices of the orders tab and the dashboard. */
export const REFUSED_WINDOW_DAYS = 7;

export function createRefusedNotifications(deps: ShopDeps) {
  const { sql } = deps;

  /**
   * Records a refusal; AnyPay's retries of the same transaction for the same reason add to its count. `first` is
   * true the first time, so the admins are told once per transaction and reason, not at every retry.
   */
  async function record(input: {
    ip: string | null;
    reason: string;
    fields: Record<string, unknown>;
  }): Promise<{ first: boolean }> {
    const f = input.fields;
    const [row] = await sql<{ tries: number }[]>`
      insert into refused_notifications (ip, reason, pay_id, transaction_id, amount, currency, status)
      values (${clip(input.ip, 64)}, ${input.reason.slice(0, 300)}, ${clip(f.pay_id, 64)},
              ${clip(f.transaction_id, 64)}, ${clip(f.amount, 32)}, ${clip(f.currency, 16)}, ${clip(f.status, 32)})
      on conflict (reason, (coalesce(transaction_id, '')))
      do update set tries = refused_notifications.tries + 1, last_at = now(), ip = excluded.ip
      returning tries`;
    return { first: row!.tries === 1 };
  }

  /** The newest refusals first, optionally only those AnyPay sent again within the last `days` days. */
  async function recent(limit = 20, days?: number): Promise<RefusedNotification[]> {
    const rows = await sql<Row[]>`
      select * from refused_notifications
      where ${days === undefined ? sql`true` : sql`last_at > now() - make_interval(days => ${days})`}
      order by last_at desc, id desc limit ${limit}`;
    return rows.map(toRefused);
  }

  return { record, recent };
}

export type RefusedNotifications = ReturnType<typeof createRefusedNotifications>;
