import type { BotStatus } from "./bot/status.ts";
import type { ShopDeps } from "./deps.ts";

/** How the shop's parts answer right now, as a monitor (and Caddy, balancing several processes) asks. */
export type Health = {
  postgres: boolean;
  redis: "ok" | "down" | "in-process";
  bot: BotStatus["state"] | "unknown";
};

/** A part that does not answer within this is down as far as a monitor is concerned. */
const PROBE_WITHIN_MS = 2_000;

export function createHealth(deps: ShopDeps, bot: { current(): Promise<BotStatus> }) {
  const { sql, cache } = deps;
  const within = <T>(probe: Promise<T>, otherwise: T) =>
    Promise.race([probe, Bun.sleep(PROBE_WITHIN_MS).then(() => otherwise)]);

  /** Every part probed at once; none of the probes throws. */
  async function check(): Promise<Health> {
    const [postgres, redis, status] = await Promise.all([
      within(
        sql`select 1`.then(
          () => true,
          () => false,
        ),
        false,
      ),
      within(cache.ping(), false),
      within(bot.current(), null),
    ]);
    return {
      postgres,
      redis: cache.kind === "memory" ? "in-process" : redis ? "ok" : "down",
      bot: status?.state ?? "unknown",
    };
  }

  return { check };
}
