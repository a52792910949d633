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
  /**
   * «Оплата звёздами Telegram» (docs/panel.md#telegram-stars): the payment step offers Stars for a duration that has
   * a Stars price while this is on.
   */
  starsEnabled: boolean;
  /** «Сброс привязки покупателем: раз в N дней»; 0 = buyers cannot reset (NUMERIC_SETTINGS). */
  hwidResetCooldownDays: number;
  /** A sharing alert: this many distinct foreign PCs within `sharingAlertHours` hours (NUMERIC_SETTINGS). */
  sharingAlertUuids: number;
  sharingAlertHours: number;
  updatedAt: Date;
};

/**
 * The shop's numeric settings, each with the name the CLI knows it by (`settings:set <name> <value>`), its field in
 * Settings, its column, its range and the words the panel shows it with. One entry here (and its column in sql/)
 * is all a new number needs: validation, the CLI and the panel's «Лимиты и пороги» card go over this list.
 */
export const NUMERIC_SETTINGS = [
  {
    name: "hwid_reset_cooldown_days",
    field: "hwidResetCooldownDays",
    min: 0,
    max: 365,
    label: "Сброс привязки покупателем: раз в N дней",
    hint: "Покупатель сам отвязывает ключ от ПК в «Моих покупках» не чаще этого. 0 — выключено: кнопки нет.",
  },
  {
    name: "sharing_alert_uuids",
    field: "sharingAlertUuids",
    min: 1,
    max: 50,
    label: "Оповещение о передаче ключа: чужих ПК",
    hint: "Ключ, которому лоадер ответил «HWID mismatch» со стольких разных чужих ПК за период ниже, — повод для оповещения администраторам в Telegram.",
  },
  {
    name: "sharing_alert_hours",
    field: "sharingAlertHours",
    min: 1,
    max: 720,
    label: "Период оповещения, часов",
    hint: "За сколько последних часов считать чужие ПК; об одном ключе — не чаще одного оповещения за этот период.",
  },
] as const satisfies readonly NumericSetting[];

export type NumericSetting = {
  /** As the CLI and docs name it: snake_case, the column's name. */
  name: string;
  field: keyof Settings;
  min: number;
  max: number;
  label: string;
  hint: string;
};

export type NumericSettingName = (typeof NUMERIC_SETTINGS)[number]["name"];
type NumericField = (typeof NUMERIC_SETTINGS)[number]["field"];

export function numericSetting(name: string): (typeof NUMERIC_SETTINGS)[number] | null {
  return NUMERIC_SETTINGS.find((s) => s.name === name) ?? null;
}

/** What is wrong with a value for a numeric setting (in the panel's words), or null when it is fine. */
export function numericSettingProblem(setting: NumericSetting, value: number): string | null {
  return Number.isInteger(value) && value >= setting.min && value <= setting.max
    ? null
    : `Целое число от ${setting.min} до ${setting.max}`;
}

export type SettingsPatch = Partial<Omit<Settings, "updatedAt">>;

export const BOT_TOKEN_PATTERN = /^\d{1,20}:[\w-]{20,100}$/;

type SettingsRow = {
  bot_token: string | null;
  bot_enabled: boolean;
  maintenance: boolean;
  anypay_merchant_id: string | null;
  anypay_secret_key: string | null;
  test_payments: boolean;
  stars_enabled: boolean;
  updated_at: Date;
} & Record<NumericSettingName, number>;

const toSettings = (r: SettingsRow): Settings => ({
  botToken: r.bot_token,
  botEnabled: r.bot_enabled,
  maintenance: r.maintenance,
  anypayMerchantId: r.anypay_merchant_id,
  anypaySecretKey: r.anypay_secret_key,
  testPayments: r.test_payments,
  starsEnabled: r.stars_enabled,
  updatedAt: r.updated_at,
  ...numbersOf(r),
});

/** The numeric settings of a row, by their fields in Settings. */
function numbersOf(r: SettingsRow): Record<NumericField, number> {
  return Object.fromEntries(NUMERIC_SETTINGS.map((s) => [s.field, r[s.name]])) as Record<NumericField, number>;
}

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
  for (const setting of NUMERIC_SETTINGS) {
    const value = patch[setting.field as NumericField];
    if (value === undefined) continue;
    const problem = numericSettingProblem(setting, value);
    if (problem) throw invalid(`${setting.label}: ${problem.toLowerCase()}`, setting.field);
  }
}

/**
 * The shop-wide switches. Every process keeps the current row in memory and reloads it when any process (panel,
 * CLI, another instance) announces a change, so a switch takes effect everywhere within moments.
 */
export function createSettings(deps: ShopDeps) {
  const { sql, cache } = deps;

  /** `column = value,` for each numeric setting in the patch (each column is named by NUMERIC_SETTINGS, not input). */
  function numbersPatched(patch: SettingsPatch) {
    return NUMERIC_SETTINGS.filter((s) => patch[s.field] !== undefined).reduce(
      (set, s) => sql`${set} ${sql(s.name)} = ${patch[s.field]!},`,
      sql``,
    );
  }
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
        stars_enabled = ${patch.starsEnabled === undefined ? sql`stars_enabled` : patch.starsEnabled},
        ${numbersPatched(patch)}
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
