import type { BotState, BotStatus } from "../src/shop/bot/status.ts";
import { NUMERIC_SETTINGS, type Settings } from "../src/shop/settings/settings.ts";
import { CsrfField, DISABLE_WHILE_SENDING, Field, Notice, postTo, Toggle } from "./components.tsx";
import { Layout } from "./layout.tsx";
import { type FieldErrors, href, type View } from "./view.ts";

type SectionProps = {
  view: View;
  settings: Settings;
  bot: BotStatus;
  errors?: FieldErrors;
  saved?: string;
  /** What the owner typed, shown again beside the errors of a refused form. */
  typed?: Record<string, string>;
};

/** An error under a control that is not a text field (a switch): the same look and id as Field's. */
function ControlError({ name, error }: { name: string; error: string | undefined }) {
  return error ? (
    <p class="field-error" id={`e-${name}`} role="alert" safe>
      {error}
    </p>
  ) : (
    ""
  );
}

const botName = (s: { username: string | null }) => (s.username ? `@${s.username}` : "");

/** The shop's bot as a sentence for the owner: what runs, and what to do when it does not. */
const BOT_STATE_TEXT: Record<BotStatus["state"], (s: BotStatus) => string> = {
  polling: (s) => `работает — бот ${botName(s)} получает сообщения (long polling).`,
  webhook: (s) => `работает — бот ${botName(s)} получает сообщения через вебхук.`,
  standby: (s) =>
    `бот ${botName(s)} готов, но сейчас сообщения не получает ни один процесс; другой процесс примет их в течение нескольких секунд.`,
  invalid_token: (s) =>
    `Telegram отклонил токен${s.error ? ` (${s.error})` : ""}. Задайте действующий токен от @BotFather: пока он не исправлен, бот никому не отвечает.`,
  no_token: () => "токен не задан — бот не запущен.",
  starting: () => "запускается: токен проверяется в Telegram…",
  unreachable: (s) => `Telegram недоступен${s.error ? ` (${s.error})` : ""}; бот повторит попытку сам.`,
  off: () => "бот не запущен ни в одном процессе магазина.",
};

/** One process among several, in a word. */
const INSTANCE_STATE_TEXT: Record<BotState, string> = {
  polling: "получает сообщения",
  webhook: "получает сообщения (вебхук)",
  standby: "в резерве: сообщения получает другой процесс",
  invalid_token: "токен отклонён",
  no_token: "нет токена",
  starting: "запускается",
  unreachable: "Telegram недоступен",
};

const BOT_STATE_TONE: Record<BotStatus["state"], string> = {
  polling: "state-on",
  webhook: "state-on",
  standby: "state-off",
  invalid_token: "state-off",
  no_token: "state-off",
  starting: "state-off",
  unreachable: "state-off",
  off: "state-off",
};

/** States that change by themselves within seconds: the line then refreshes itself. */
const PASSING: ReadonlySet<BotStatus["state"]> = new Set(["starting", "unreachable", "standby"]);

/** The bot's state as the running processes report it; refreshes itself while it is about to change. */
export function BotStatusLine({ view, bot }: { view: View; bot: BotStatus }) {
  const live = PASSING.has(bot.state);
  return (
    <div
      id="bot-status"
      class="bot-status"
      hx-get={live ? href(view, "/settings/bot-status") : undefined}
      hx-trigger={live ? "every 2s" : undefined}
      hx-swap={live ? "outerHTML" : undefined}
    >
      <p>
        Состояние бота:{" "}
        <strong class={BOT_STATE_TONE[bot.state]} safe>
          {BOT_STATE_TEXT[bot.state](bot)}
        </strong>
      </p>
      {bot.instances.length > 1 ? (
        <ul class="bot-instances">
          {bot.instances.map((i) => (
            <li>
              <code safe>{i.instanceId}</code>
              {i.here ? " (этот процесс)" : ""} — <span safe>{INSTANCE_STATE_TEXT[i.state]}</span>
            </li>
          ))}
        </ul>
      ) : (
        ""
      )}
    </div>
  );
}

/** Bot on/off and maintenance: the two switches the owner flips most. */
export function BotSwitches({ view, settings, errors, saved }: SectionProps) {
  const e = errors ?? {};
  return (
    <section id="bot-switches" class="card">
      <h2>Бот</h2>
      {saved ? <Notice kind="ok">{<span safe>{saved}</span>}</Notice> : ""}
      <div class="switch-row">
        <div>
          <p class="switch-title">Работа бота</p>
          <p class="hint">
            Выключенный бот отвечает покупателям «Бот временно отключён.» (администраторам — как обычно).
          </p>
        </div>
        <Toggle
          view={view}
          action={href(view, "/settings/bot")}
          name="botEnabled"
          on={settings.botEnabled}
          onLabel="Включён"
          offLabel="Выключен"
          turnOn="Включить бота"
          turnOff="Выключить бота"
          target="#bot-switches"
          confirm={settings.botEnabled ? "Выключить бота для покупателей?" : undefined}
        />
      </div>
      <ControlError name="botEnabled" error={e.botEnabled} />
      <div class="switch-row">
        <div>
          <p class="switch-title">Технические работы</p>
          <p class="hint">Покупатели видят «Ведутся технические работы. Попробуйте позже.»; API ключей работает.</p>
        </div>
        <Toggle
          view={view}
          action={href(view, "/settings/bot")}
          name="maintenance"
          on={settings.maintenance}
          onLabel="Идут"
          offLabel="Нет"
          turnOn="Начать работы"
          turnOff="Закончить работы"
          target="#bot-switches"
        />
      </div>
      {!settings.botToken && settings.botEnabled ? (
        <Notice kind="warn">Бот включён, но токен не задан: он не запустится, пока вы не зададите токен ниже.</Notice>
      ) : (
        ""
      )}
    </section>
  );
}

/** The bot token is a secret: the panel only says whether one is set, accepts a new one, and says how the bot runs. */
export function TokenSection({ view, settings, bot, errors, saved }: SectionProps) {
  const e = errors ?? {};
  return (
    <section id="bot-token" class="card">
      <h2>Токен бота</h2>
      {saved ? <Notice kind="ok">{<span safe>{saved}</span>}</Notice> : ""}
      <p>
        Токен:{" "}
        {settings.botToken ? <strong class="state-on">задан</strong> : <strong class="state-off">не задан</strong>}
      </p>
      <BotStatusLine view={view} bot={bot} />
      <form class="stack" {...postTo(href(view, "/settings/token"), "#bot-token")} {...DISABLE_WHILE_SENDING}>
        <CsrfField view={view} />
        <Field
          label={settings.botToken ? "Новый токен" : "Токен"}
          name="botToken"
          error={e.botToken}
          hint="Выдаёт @BotFather: 123456789:AA… Применяется сразу, без перезапуска."
        >
          <input
            id="f-botToken"
            name="botToken"
            type="password"
            autocomplete="off"
            spellcheck="false"
            maxlength="200"
            placeholder={settings.botToken ? "•••••••• (не показывается)" : "123456789:AA…"}
          />
        </Field>
        <input type="hidden" name="action" value="save" />
        <button type="submit" class="primary">
          Сохранить токен
        </button>
      </form>
      {settings.botToken ? (
        <form
          {...postTo(href(view, "/settings/token"), "#bot-token")}
          hx-confirm="Удалить токен? Бот перестанет работать."
        >
          <CsrfField view={view} />
          <input type="hidden" name="action" value="clear" />
          <button type="submit" class="danger">
            Удалить токен
          </button>
        </form>
      ) : (
        ""
      )}
    </section>
  );
}

/** AnyPay merchant: the id is shown, the secret key only as set / not set. */
export function AnypaySection({ view, settings, errors, saved }: SectionProps) {
  const e = errors ?? {};
  return (
    <section id="anypay" class="card">
      <h2>Оплата AnyPay</h2>
      {saved ? <Notice kind="ok">{<span safe>{saved}</span>}</Notice> : ""}
      <form class="stack" {...postTo(href(view, "/settings/anypay"), "#anypay")} {...DISABLE_WHILE_SENDING}>
        <CsrfField view={view} />
        <Field label="ID магазина (merchant id)" name="anypayMerchantId" error={e.anypayMerchantId}>
          <input
            id="f-anypayMerchantId"
            name="anypayMerchantId"
            inputmode="numeric"
            maxlength="20"
            autocomplete="off"
            value={settings.anypayMerchantId ?? ""}
          />
        </Field>
        <Field
          label={`Секретный ключ — ${settings.anypaySecretKey ? "задан" : "не задан"}`}
          name="anypaySecretKey"
          error={e.anypaySecretKey}
          hint="Оставьте пустым, чтобы не менять."
        >
          <input
            id="f-anypaySecretKey"
            name="anypaySecretKey"
            type="password"
            autocomplete="off"
            maxlength="200"
            placeholder={settings.anypaySecretKey ? "•••••••• (не показывается)" : ""}
          />
        </Field>
        <p class="hint">
          Адрес уведомлений для AnyPay: <code safe>{`${view.publicBase}/payments/anypay`}</code>
        </p>
        <button type="submit" class="primary">
          Сохранить AnyPay
        </button>
      </form>
      <div class="switch-row">
        <div>
          <p class="switch-title">Тестовые платежи для администраторов</p>
          <p class="hint">Администраторы бота смогут оплатить заказ без денег, чтобы проверить выдачу.</p>
        </div>
        <Toggle
          view={view}
          action={href(view, "/settings/test-payments")}
          name="testPayments"
          on={settings.testPayments}
          onLabel="Включены"
          offLabel="Выключены"
          turnOn="Включить"
          turnOff="Выключить"
          target="#anypay"
        />
      </div>
      <ControlError name="testPayments" error={e.testPayments} />
    </section>
  );
}

/**
 * The shop's numbers (NUMERIC_SETTINGS), one field each, saved together. Field names are the settings' own names,
 * as `settings:set` knows them.
 */
export function NumbersSection({ view, settings, errors, saved, typed }: SectionProps) {
  const e = errors ?? {};
  return (
    <section id="numbers" class="card">
      <h2>Лимиты и пороги</h2>
      {saved ? <Notice kind="ok">{<span safe>{saved}</span>}</Notice> : ""}
      <form class="stack" {...postTo(href(view, "/settings/numbers"), "#numbers")} {...DISABLE_WHILE_SENDING}>
        <CsrfField view={view} />
        {NUMERIC_SETTINGS.map((s) => (
          <Field label={s.label} name={s.name} error={e[s.name]} hint={s.hint}>
            <input
              id={`f-${s.name}`}
              name={s.name}
              type="number"
              inputmode="numeric"
              min={String(s.min)}
              max={String(s.max)}
              step="1"
              required
              class="tiny"
              value={typed?.[s.name] ?? String(settings[s.field])}
            />
          </Field>
        ))}
        <button type="submit" class="primary">
          Сохранить
        </button>
      </form>
    </section>
  );
}

/**
 * Telegram Stars (docs/panel.md#telegram-stars): the switch. Prices in Stars are set per duration on the product's
 * page; a duration without one is paid in roubles only.
 */
export function StarsSection({ view, settings, errors, saved }: SectionProps) {
  const e = errors ?? {};
  return (
    <section id="stars" class="card">
      <h2>Оплата звёздами Telegram</h2>
      {saved ? <Notice kind="ok">{<span safe>{saved}</span>}</Notice> : ""}
      <div class="switch-row">
        <div>
          <p class="switch-title">Звёзды Telegram (⭐)</p>
          <p class="hint">
            На шаге оплаты появится кнопка «Оплатить ⭐» рядом с AnyPay — для сроков, у которых на странице продукта
            указана цена в звёздах. Звёзды приходят на баланс бота в Telegram.
          </p>
        </div>
        <Toggle
          view={view}
          action={href(view, "/settings/stars")}
          name="starsEnabled"
          on={settings.starsEnabled}
          onLabel="Включена"
          offLabel="Выключена"
          turnOn="Включить"
          turnOff="Выключить"
          target="#stars"
        />
      </div>
      <ControlError name="starsEnabled" error={e.starsEnabled} />
    </section>
  );
}

export type SettingsSection = "bot" | "token" | "anypay" | "stars" | "numbers";

/**
 * The whole tab; `section` says which part shows `errors`/`saved` (a plain form post that came back); `broadcast`
 * is the broadcast card (templates/broadcasts.tsx), rendered by its own routes.
 */
export function SettingsPage(props: SectionProps & { section?: SettingsSection; broadcast: JSX.Element }) {
  const { view } = props;
  // Already HTML: the card rendered (and escaped) by BroadcastBlock or BroadcastPreview.
  const safeBroadcast = props.broadcast;
  const extra = (s: SettingsSection) =>
    props.section === s ? { errors: props.errors, saved: props.saved, typed: props.typed } : {};
  return (
    <Layout view={view} title="Основные настройки" tab="settings">
      <h1>Основные настройки</h1>
      <div class="grid-2">
        <BotSwitches view={view} settings={props.settings} bot={props.bot} {...extra("bot")} />
        <TokenSection view={view} settings={props.settings} bot={props.bot} {...extra("token")} />
        <AnypaySection view={view} settings={props.settings} bot={props.bot} {...extra("anypay")} />
        <StarsSection view={view} settings={props.settings} bot={props.bot} {...extra("stars")} />
        <NumbersSection view={view} settings={props.settings} bot={props.bot} {...extra("numbers")} />
        {safeBroadcast}
      </div>
    </Layout>
  );
}
