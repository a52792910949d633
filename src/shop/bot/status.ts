import { createHash } from "node:crypto";
import { LOCKS, type SessionLock, sessionLock } from "../../db/session-lock.ts";
import { log } from "../../lib/log.ts";
import type { ShopDeps } from "../deps.ts";

/** Where a running bot stands, as the process running it reports it. */
export type BotState =
  /** No token in the settings: nothing to run. */
  | "no_token"
  /** Asking Telegram who the token belongs to. */
  | "starting"
  /** Telegram refused the token (401/404): waits for a new one. */
  | "invalid_token"
  /** Telegram (or the webhook setup) cannot be reached: retried shortly. */
  | "unreachable"
  /** Ready, but another instance of the shop receives the updates. */
  | "standby"
  | "polling"
  | "webhook";

export type BotReport = {
  state: BotState;
  username: string | null;
  error: string | null;
  /** Which token the state is about (see tokenHint). */
  tokenHint: string | null;
};

/**
 * The bot as the whole shop sees it: the best of what its running instances report, or `off` when no process of
 * the shop runs the bot (none has reported lately).
 */
export type BotStatus = {
  state: BotState | "off";
  username: string | null;
  error: string | null;
  instances: (BotReport & { instanceId: string; here: boolean })[];
};

/** A short, one-way fingerprint of a token: enough to tell two tokens apart, useless to anyone who reads it. */
export function tokenHint(token: string): string {
  return createHash("sha256").update(token).digest("hex").slice(0, 12);
}

/** Which state speaks for the shop when instances differ: one that receives updates beats any that waits. */
const PRECEDENCE: BotState[] = [
  "polling",
  "webhook",
  "invalid_token",
  "unreachable",
  "starting",
  "standby",
  "no_token",
];

type InstanceRow = {
  instance_id: string;
  state: BotState;
  username: string | null;
  error: string | null;
  token_hint: string | null;
};

/**
 * What the bot runtime tells the rest of the shop: its state (for the panel and healthz, which must not depend on
 * the bot adapter), where its long polling stands, and the lock that lets exactly one instance poll. All of it in
 * Postgres, so it holds with Redis down.
 */
export function createBotStatus(deps: ShopDeps) {
  const { sql } = deps;
  // This process's own runtime: known without a query, and the answer when the database cannot give one.
  let local: (BotReport & { instanceId: string }) | null = null;
  const listeners = new Set<(report: BotReport) => void>();
  let lastWriteError = 0;
  // Writes go one after another, so a quick change of state never ends with the older one on record.
  let writes: Promise<void> = Promise.resolve();

  /** Records a runtime's state; `freshForMs` is how long it stands without being reported again. */
  function report(instanceId: string, next: BotReport, freshForMs: number): Promise<void> {
    local = { ...next, instanceId };
    for (const listener of listeners) listener(next);
    writes = writes.then(() => write(instanceId, next, freshForMs));
    return writes;
  }

  async function write(instanceId: string, next: BotReport, freshForMs: number): Promise<void> {
    try {
      await sql`
        insert into bot_instances (instance_id, state, username, error, token_hint, reported_at, fresh_until)
        values (${instanceId}, ${next.state}, ${next.username}, ${next.error?.slice(0, 500) ?? null}, ${next.tokenHint},
                now(), now() + make_interval(secs => ${freshForMs / 1000}))
        on conflict (instance_id) do update set
          state = excluded.state, username = excluded.username, error = excluded.error,
          token_hint = excluded.token_hint, reported_at = excluded.reported_at, fresh_until = excluded.fresh_until`;
    } catch (error) {
      if (Date.now() - lastWriteError > 10_000)
        log.warn("bot status not recorded", { error: (error as Error).message });
      lastWriteError = Date.now();
    }
  }

  /** The runtime stopped: its report goes at once rather than when it would have gone stale. */
  async function withdraw(instanceId: string): Promise<void> {
    if (local?.instanceId === instanceId) local = null;
    await writes;
    // Reports of processes long gone are cleared on the way: the table holds the living and the recently dead.
    await sql`
      delete from bot_instances
      where instance_id = ${instanceId} or fresh_until < now() - interval '1 day'`.catch(() => {});
  }

  async function current(): Promise<BotStatus> {
    let rows: InstanceRow[];
    try {
      rows = await sql<InstanceRow[]>`
        select instance_id, state, username, error, token_hint from bot_instances
        where fresh_until > now() order by reported_at desc`;
    } catch {
      rows = [];
    }
    const instances = rows.map((r) => ({
      instanceId: r.instance_id,
      state: r.state,
      username: r.username,
      error: r.error,
      tokenHint: r.token_hint,
      here: r.instance_id === local?.instanceId,
    }));
    // This process knows its own state best (its last write may have failed, or not be visible yet).
    const own = local;
    if (own) {
      const i = instances.findIndex((x) => x.instanceId === own.instanceId);
      const mine = { ...own, here: true };
      if (i >= 0) instances[i] = mine;
      else instances.unshift(mine);
    }
    const speaker = PRECEDENCE.map((state) => instances.find((x) => x.state === state)).find(Boolean);
    if (!speaker) return { state: "off", username: null, error: null, instances };
    return {
      state: speaker.state,
      username: speaker.username ?? instances.find((x) => x.username)?.username ?? null,
      error: speaker.error,
      instances,
    };
  }

  /** This process's runtime's last report, or null when no runtime runs here. */
  function here(): BotReport | null {
    return local;
  }

  /**
   * Waits until this process's runtime has tried the token with this hint (any state but `starting`), up to
   * timeoutMs. Null when no runtime runs here, or it has not decided yet.
   */
  async function verdictFor(hint: string, timeoutMs: number): Promise<BotReport | null> {
    if (!local) return null;
    const decided = (r: BotReport | null) => r !== null && r.tokenHint === hint && r.state !== "starting";
    if (decided(local)) return local;
    return await new Promise<BotReport | null>((resolve) => {
      const done = (value: BotReport | null) => {
        clearTimeout(timer);
        listeners.delete(listener);
        resolve(value);
      };
      const listener = (r: BotReport) => {
        if (decided(r)) done(r);
      };
      const timer = setTimeout(() => done(null), timeoutMs);
      listeners.add(listener);
    });
  }

  /** Where polling of this bot stands: the next update id, and ids above it that were already answered. */
  async function pollingPosition(botId: number): Promise<{ next: number; answered: number[] }> {
    const [row] = await sql<{ next_update_id: string; answered: string[] }[]>`
      select next_update_id, answered from bot_polling where bot_id = ${botId}`;
    return row ? { next: Number(row.next_update_id), answered: row.answered.map(Number) } : { next: 0, answered: [] };
  }

  async function savePollingPosition(botId: number, next: number, answered: number[]): Promise<void> {
    await sql`
      insert into bot_polling (bot_id, next_update_id, answered, updated_at)
      values (${botId}, ${next}, ${answered}::bigint[], now())
      on conflict (bot_id) do update set
        next_update_id = excluded.next_update_id, answered = excluded.answered, updated_at = excluded.updated_at`;
  }

  /** The lock of "the one instance that receives the bot's updates". */
  function pollerLock(idleCutoffMs: number): SessionLock {
    return sessionLock(sql, deps.config.databaseUrl, LOCKS.botPoller, { idleCutoffMs });
  }

  return { report, withdraw, current, here, verdictFor, pollingPosition, savePollingPosition, pollerLock };
}

export type BotStatusService = ReturnType<typeof createBotStatus>;
