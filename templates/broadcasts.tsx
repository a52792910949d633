import { escapeHtml } from "@kitajs/html";
import { counted, plural, USERS } from "../src/lib/plural.ts";
import type { Broadcast } from "../src/shop/broadcasts/broadcasts.ts";
import { wouldSee } from "../src/shop/texts/admins.ts";
import { CsrfField, DISABLE_WHILE_SENDING, Field, postTo } from "./components.tsx";
import { href, type View } from "./view.ts";

/** The broadcast card of the settings tab: the form, the preview, and the latest broadcasts with their progress. */

const STATUS_TEXT: Record<Broadcast["status"], string> = {
  pending: "ожидает отправки",
  running: "отправляется",
  done: "завершена",
  cancelled: "остановлена",
};

/** Every answer of the block replaces it whole, so a form's answer can never land inside one of its buttons. */
const BLOCK = "#broadcast";

/** One broadcast's progress; while it is being sent it re-fetches itself every second (htmx polling). */
export function BroadcastProgress({ view, broadcast }: { view: View; broadcast: Broadcast }) {
  const p = broadcast.progress;
  const handled = p.sent + p.blocked + p.failed + p.unconfirmed + p.cancelled;
  const live = broadcast.status === "pending" || broadcast.status === "running";
  const url = href(view, `/broadcasts/${broadcast.id}`);
  const id = `broadcast-${broadcast.id}`;
  return (
    <article
      id={id}
      class="broadcast"
      hx-get={live ? url : undefined}
      hx-trigger={live ? "every 1s" : undefined}
      hx-swap={live ? "outerHTML" : undefined}
    >
      <header>
        <strong safe>{`Рассылка №${broadcast.id}`}</strong>
        <span class={`broadcast-status status-${broadcast.status}`} safe>
          {STATUS_TEXT[broadcast.status]}
        </span>
      </header>
      <blockquote safe>{broadcast.text}</blockquote>
      <progress value={String(handled)} max={String(Math.max(p.total, 1))} aria-label="Ход рассылки" />
      <p class="broadcast-counts">
        {escapeHtml(`Отправлено ${p.sent} из ${p.total}`)}
        {p.blocked > 0 ? ` · заблокировали бота: ${p.blocked}` : ""}
        {p.failed > 0 ? ` · не доставлено: ${p.failed}` : ""}
        {p.unconfirmed > 0 ? ` · доставка не подтверждена (не отправляются повторно): ${p.unconfirmed}` : ""}
        {p.cancelled > 0 ? ` · не отправлено после остановки: ${p.cancelled}` : ""}
      </p>
      {live ? (
        <form
          class="broadcast-stop"
          {...postTo(`${url}/cancel`, `#${id}`)}
          hx-confirm="Остановить рассылку? Кто ещё не получил сообщение, не получит его."
        >
          <CsrfField view={view} />
          <button type="submit" class="danger small">
            Остановить
          </button>
        </form>
      ) : (
        ""
      )}
    </article>
  );
}

export type BroadcastDraft = { text: string; error?: string | undefined };

/** The card as it usually is: the form (with the refused draft and why), then the latest broadcasts. */
export function BroadcastBlock(props: { view: View; audience: number; recent: Broadcast[]; draft?: BroadcastDraft }) {
  const { view, audience } = props;
  return (
    <section id="broadcast" class="card stack">
      <h2>Рассылка всем пользователям</h2>
      <form class="stack" {...postTo(href(view, "/broadcasts/preview"), BLOCK)} {...DISABLE_WHILE_SENDING}>
        <CsrfField view={view} />
        <Field
          label="Текст рассылки"
          name="broadcast-text"
          error={props.draft?.error}
          hint={`До 4096 символов. ${plural(audience, ["Получит", "Получат", "Получат"])} ${counted(audience, USERS)} — все, кто писал боту и не заблокировал его.`}
        >
          <textarea id="f-broadcast-text" name="text" rows="5" maxlength="4096" required safe>
            {props.draft?.text ?? ""}
          </textarea>
        </Field>
        <button type="submit" class="primary">
          Предпросмотр
        </button>
      </form>
      {props.recent.length > 0 ? (
        <div class="broadcasts stack">
          {props.recent.map((b) => (
            <BroadcastProgress view={view} broadcast={b} />
          ))}
        </div>
      ) : (
        ""
      )}
    </section>
  );
}

/**
 * The text as buyers will see it, with «Отправить» and «Изменить». One form, posted as a whole with the pressed
 * button's name: htmx 4 would swap the answer into a button that carried its own hx-post.
 */
export function BroadcastPreview({ view, audience, text }: { view: View; audience: number; text: string }) {
  return (
    <section id="broadcast" class="card stack">
      <h2>Рассылка всем пользователям</h2>
      <p safe>{`Так сообщение ${wouldSee(audience)}:`}</p>
      <blockquote class="preview" safe>
        {text}
      </blockquote>
      <form class="row-buttons" {...postTo(href(view, "/broadcasts"), BLOCK)} {...DISABLE_WHILE_SENDING}>
        <CsrfField view={view} />
        <textarea name="text" hidden safe>
          {text}
        </textarea>
        <button type="submit" name="action" value="send" class="primary">
          Отправить
        </button>
        <button type="submit" name="action" value="edit" class="secondary">
          Изменить
        </button>
      </form>
    </section>
  );
}
