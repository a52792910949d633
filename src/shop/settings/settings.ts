import { CHANNELS } from "../../cache/channels.ts";
import { log } from "../../lib/log.ts";
import type { ShopDeps } from "../deps.ts";
import { invalid } from "../errors.ts";

export type Settings = {
  botToken: string | null;
  botEnabled: boolean;
  maintenance: boolean;
  anypayMerchantId: string | null;
  anypaySecretKey: string | null;
  testPayments: boolean;
  updatedAt: Date;
};

export type SettingsPatch = Partial<Omit<Settings, "updatedAt">>;

export const BOT_TOKEN_PATTERN = /^\d{1,20}:[\w-]{20,100}$/;

type SettingsRow = {
  bot_token: string | null;
  bot_enabled: boolean;
  maintenance: boolean;
  anypay_merchant_id: string | null;
  anypay_secret_key: string | null;
  test_payments: boolean;
  updated_at: Date;
};

const toSettings = (r: SettingsRow): Settings => ({
  botToken: r.bot_token,
  botEnabled: r.bot_enabled,
  maintenance: r.maintenance,
  anypayMerchantId: r.anypay_merchant_id,
  anypaySecretKey: r.anypay_secret_key,
  testPayments: r.test_payments,
  updatedAt: r.updated_at,
});

function validate(patch: SettingsPatch): void {
  if (patch.botToken != null && !BOT_TOKEN_PATTERN.test(patch.botToken)) {
    throw invalid("Токен бота выглядит как 123456789:AA… (его выдаёт @BotFather)", "botToken");
  }
  if (patch.anypayMerchantId != null && !/^\d{1,20}$/.test(patch.anypayMerchantId)) {
    throw invalid("ID магазина AnyPay — число", "anypayMerchantId");
  }
  if (patch.anypaySecretKey != null && (patch.anypaySecretKey.length < 1 || patch.anypaySecretKey.length > 200)) {
    throw invalid("Секретный ключ AnyPay — от 1 до 200 символов", "anypaySecretKey");
  }
}

/**
 * The shop-wide switches. Every process keeps the current row in memory and reloads it when any process (panel,
 * CLI, another instance) announces a change, so a switch takes effect everywhere within moments.
 */
export function createSettings(deps: ShopDeps) {
  const { sql, cache } = deps;
  let current: Settings | null = null;
  const listeners = new Set<(settings: Settings, previous: Settings | null) => void>();
  // Reads and saves in this process take turns. Otherwise a read that started before a save (the periodic reload,
  // an announcement) and answered after it would put the old row back in memory and tell the listeners so: the
  // bot would restart on the old token, or reopen during maintenance, until the next reload.
  let turn: Promise<unknown> = Promise.resolve();
  function inTurn<T>(work: () => Promise<T>): Promise<T> {
    const run = turn.then(work, work);
    turn = run.catch(() => {});
    return run;
  }

  function load(): Promise<Settings> {
    return inTurn(async () => {
      const [row] = await sql<SettingsRow[]>`select * from settings where id = 1`;
      const previous = current;
      current = toSettings(row!);
      if (previous && previous.updatedAt.getTime() !== current.updatedAt.getTime()) {
        for (const listener of listeners) listener(current, previous);
      }
      return current;
    });
  }

  async function get(): Promise<Settings> {
    return current ?? (await load());
  }

  async function update(patch: SettingsPatch): Promise<Settings> {
    validate(patch);
    const saved = await inTurn(() => save(patch));
    await cache.publish(CHANNELS.settings, "changed");
    log.info("settings changed", { fields: Object.keys(patch) });
    return saved;
  }

  async function save(patch: SettingsPatch): Promise<Settings> {
    const [row] = await sql<SettingsRow[]>`
      update settings set
        bot_token = ${patch.botToken === undefined ? sql`bot_token` : patch.botToken},
        bot_enabled = ${patch.botEnabled === undefined ? sql`bot_enabled` : patch.botEnabled},
        maintenance = ${patch.maintenance === undefined ? sql`maintenance` : patch.maintenance},
        anypay_merchant_id = ${patch.anypayMerchantId === undefined ? sql`anypay_merchant_id` : patch.anypayMerchantId},
        anypay_secret_key = ${patch.anypaySecretKey === undefined ? sql`anypay_secret_key` : patch.anypaySecretKey},
        test_payments = ${patch.testPayments === undefined ? sql`test_payments` : patch.testPayments},
        updated_at = clock_timestamp()
      where id = 1
      returning *`;
    const previous = current;
    current = toSettings(row!);
    for (const listener of listeners) listener(current, previous);
    return current;
  }

  /** Fills settings that are still empty from the environment (BOT_TOKEN, ANYPAY_*): the panel's values win. */
  async function seedFromEnvironment(): Promise<void> {
    const s = await get();
    const patch: SettingsPatch = {};
    if (!s.botToken && deps.config.botToken) patch.botToken = deps.config.botToken;
    if (!s.anypayMerchantId && deps.config.anypayMerchantId) patch.anypayMerchantId = deps.config.anypayMerchantId;
    if (!s.anypaySecretKey && deps.config.anypaySecretKey) patch.anypaySecretKey = deps.config.anypaySecretKey;
    if (Object.keys(patch).length > 0) await update(patch);
  }

  /** Called on every change, local or announced by another process. */
  function onChange(listener: (settings: Settings, previous: Settings | null) => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  return { get, load, update, seedFromEnvironment, onChange };
}

export type SettingsService = ReturnType<typeof createSettings>;
