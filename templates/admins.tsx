import type { BotAdmin } from "../src/shop/users/admins.ts";
import { CsrfField, DISABLE_WHILE_SENDING, Field, Notice, postTo } from "./components.tsx";
import { day, personName } from "./format.ts";
import { Layout } from "./layout.tsx";
import { type FieldErrors, href, type View } from "./view.ts";

export type AdminsProps = {
  view: View;
  admins: BotAdmin[];
  errors?: FieldErrors;
  values?: { telegramId?: string; note?: string };
  saved?: string;
};

/** The list and the add form in one swappable block: adding or removing re-renders both. */
export function AdminsSection(props: AdminsProps) {
  const { view } = props;
  const e = props.errors ?? {};
  return (
    <div id="admins" class="stack">
      {props.saved ? <Notice kind="ok">{<span safe>{props.saved}</span>}</Notice> : ""}
      {e._ ? <Notice kind="error">{<span safe>{e._}</span>}</Notice> : ""}
      <section class="card">
        <h2>Добавить администратора</h2>
        <form class="inline-form" {...postTo(href(view, "/admins"), "#admins")} {...DISABLE_WHILE_SENDING}>
          <CsrfField view={view} />
          <Field
            label="Telegram ID"
            name="telegramId"
            error={e.telegramId}
            hint="Число. Узнать свой ID можно у @userinfobot."
          >
            <input
              id="f-telegramId"
              name="telegramId"
              inputmode="numeric"
              required
              maxlength="16"
              autocomplete="off"
              value={props.values?.telegramId ?? ""}
            />
          </Field>
          <Field label="Заметка" name="note" error={e.note}>
            <input
              id="f-note"
              name="note"
              maxlength="200"
              placeholder="например, «владелец»"
              value={props.values?.note ?? ""}
            />
          </Field>
          <button type="submit" class="primary">
            Добавить
          </button>
        </form>
      </section>
      <section class="card">
        <h2>Администраторы бота</h2>
        {props.admins.length === 0 ? (
          <p class="empty">Пока никого. Администраторы видят в боте рассылку и включение технических работ.</p>
        ) : (
          <div class="table-wrap">
            <table class="table cards">
              <thead>
                <tr>
                  <th>Telegram ID</th>
                  <th>Заметка</th>
                  <th>Добавлен</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {props.admins.map((a) => (
                  <tr>
                    <td data-label="Telegram ID">
                      {a.user ? (
                        <>
                          <a href={href(view, `/users/${a.telegramId}`)} safe>
                            {String(a.telegramId)}
                          </a>
                          <span class="sub" safe>
                            {personName(a.user)}
                          </span>
                        </>
                      ) : (
                        <>
                          <span safe>{String(a.telegramId)}</span>
                          <span class="sub">ещё не писал боту</span>
                        </>
                      )}
                    </td>
                    <td data-label="Заметка" safe>
                      {a.note || "—"}
                    </td>
                    <td data-label="Добавлен" safe>
                      {day(a.createdAt)}
                    </td>
                    <td class="row-actions">
                      <form
                        {...postTo(href(view, `/admins/${a.telegramId}/delete`), "#admins")}
                        hx-confirm={`Убрать ${a.telegramId} из администраторов?`}
                      >
                        <CsrfField view={view} />
                        <button type="submit" class="danger small">
                          Убрать
                        </button>
                      </form>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}

export function AdminsPage(props: AdminsProps) {
  return (
    <Layout view={props.view} title="Администраторы" tab="admins">
      <h1>Администраторы</h1>
      <p class="lead">Telegram-пользователи, которых бот считает администраторами.</p>
      <AdminsSection {...props} />
    </Layout>
  );
}
