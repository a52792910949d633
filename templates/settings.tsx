import type { Settings } from "../src/shop/settings.ts";
import { CsrfField, DISABLE_WHILE_SENDING, Field, Notice, postTo, Toggle } from "./components.tsx";
import { Layout } from "./layout.tsx";
import { type FieldErrors, href, type View } from "./view.ts";

type SectionProps = { view: View; settings: Settings; errors?: FieldErrors; saved?: string };

/** Bot on/off and maintenance: the two switches the owner flips most. */
export function BotSwitches({ view, settings, saved }: SectionProps) {
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

/** The bot token is a secret: the panel only says whether one is set and accepts a new one. */
export function TokenSection({ view, settings, errors, saved }: SectionProps) {
  const e = errors ?? {};
  return (
    <section id="bot-token" class="card">
      <h2>Токен бота</h2>
      {saved ? <Notice kind="ok">{<span safe>{saved}</span>}</Notice> : ""}
      <p>
        Токен:{" "}
        {settings.botToken ? <strong class="state-on">задан</strong> : <strong class="state-off">не задан</strong>}
      </p>
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
    </section>
  );
}

export type SettingsSection = "bot" | "token" | "anypay";

/** The whole tab; `section` says which part shows `errors`/`saved` (a plain form post that came back). */
export function SettingsPage(props: SectionProps & { section?: SettingsSection }) {
  const { view } = props;
  const extra = (s: SettingsSection) => (props.section === s ? { errors: props.errors, saved: props.saved } : {});
  return (
    <Layout view={view} title="Основные настройки" tab="settings">
      <h1>Основные настройки</h1>
      <div class="grid-2">
        <BotSwitches view={view} settings={props.settings} {...extra("bot")} />
        <TokenSection view={view} settings={props.settings} {...extra("token")} />
        <AnypaySection view={view} settings={props.settings} {...extra("anypay")} />
        <section id="broadcast" hx-get={href(view, "/broadcasts")} hx-trigger="load" hx-swap="innerHTML" />
      </div>
    </Layout>
  );
}
