import { Elysia } from "elysia";
import type { Config } from "../config.ts";
import { log } from "../lib/log.ts";
import { type Broadcast, broadcastTextProblem, MAX_BROADCAST_TEXT } from "../shop/broadcasts.ts";
import { ShopError } from "../shop/errors.ts";
import type { Shop } from "../shop/index.ts";
import { panelGuard } from "./guard.ts";

const plural = (n: number, one: string, few: string, many: string) => {
  const m100 = n % 100;
  const m10 = n % 10;
  if (m100 >= 11 && m100 <= 14) return many;
  if (m10 === 1) return one;
  if (m10 >= 2 && m10 <= 4) return few;
  return many;
};
const users = (n: number) => `${n} ${plural(n, "пользователь", "пользователя", "пользователей")}`;

const STATUS_TEXT: Record<Broadcast["status"], string> = {
  pending: "ожидает отправки",
  running: "отправляется",
  done: "завершена",
  cancelled: "отменена",
};

/** One broadcast's progress bar; while it is being sent it re-fetches itself every second (htmx polling). */
export function BroadcastProgress({ base, broadcast }: { base: string; broadcast: Broadcast }): JSX.Element {
  const p = broadcast.progress;
  const handled = p.sent + p.blocked + p.failed + p.unconfirmed + p.cancelled;
  const live = broadcast.status === "pending" || broadcast.status === "running";
  const url = `${base}/broadcasts/${broadcast.id}`;
  return (
    <article
      id={`broadcast-${broadcast.id}`}
      class="broadcast"
      hx-get={live ? url : undefined}
      hx-trigger={live ? "every 1s" : undefined}
      hx-swap={live ? "outerHTML" : undefined}
    >
      <header>
        Рассылка №{broadcast.id} · <span safe>{STATUS_TEXT[broadcast.status]}</span>
      </header>
      <blockquote safe>{broadcast.text}</blockquote>
      <progress value={String(handled)} max={String(Math.max(p.total, 1))} aria-label="Ход рассылки" />
      <p class="broadcast-counts">
        Отправлено {p.sent} из {p.total}
        {p.blocked > 0 ? ` · заблокировали бота: ${p.blocked}` : ""}
        {p.failed > 0 ? ` · не доставлено: ${p.failed}` : ""}
        {p.unconfirmed > 0 ? ` · доставка не подтверждена (не отправляются повторно): ${p.unconfirmed}` : ""}
        {p.cancelled > 0 ? ` · отменено: ${p.cancelled}` : ""}
      </p>
      {live ? (
        <button
          type="button"
          hx-post={`${url}/cancel`}
          hx-target={`#broadcast-${broadcast.id}`}
          hx-swap="outerHTML"
          hx-confirm="Остановить рассылку? Кто ещё не получил сообщение, не получит его."
        >
          Остановить
        </button>
      ) : (
        ""
      )}
    </article>
  );
}

function BroadcastForm({
  base,
  audience,
  text = "",
  error,
}: {
  base: string;
  audience: number;
  text?: string;
  error?: string | undefined;
}): JSX.Element {
  return (
    <form hx-post={`${base}/broadcasts/preview`} hx-target="#broadcast-panel" hx-swap="outerHTML">
      <label for="broadcast-text">Текст рассылки (до {MAX_BROADCAST_TEXT} символов)</label>
      <textarea id="broadcast-text" name="text" rows="5" maxlength={String(MAX_BROADCAST_TEXT)} required safe>
        {text}
      </textarea>
      {error ? (
        <p class="error" role="alert" safe>
          {error}
        </p>
      ) : (
        ""
      )}
      <p class="hint">
        Получат <span safe>{users(audience)}</span> — все, кто писал боту и не заблокировал его.
      </p>
      <button type="submit">Предпросмотр</button>
    </form>
  );
}

/** The whole broadcast block of the settings tab: the form and the latest broadcasts with their progress. */
function BroadcastPanel({
  base,
  audience,
  recent,
  draft,
}: {
  base: string;
  audience: number;
  recent: Broadcast[];
  /** The text to put back in the form, and why it was refused. */
  draft?: { text: string; error?: string | undefined } | undefined;
}): JSX.Element {
  return (
    <div id="broadcast-panel">
      <h2>Рассылка всем пользователям</h2>
      <BroadcastForm base={base} audience={audience} text={draft?.text ?? ""} error={draft?.error} />
      {recent.map((b) => (
        <BroadcastProgress base={base} broadcast={b} />
      ))}
    </div>
  );
}

function BroadcastPreview({ base, audience, text }: { base: string; audience: number; text: string }): JSX.Element {
  return (
    <div id="broadcast-panel">
      <h2>Рассылка всем пользователям</h2>
      <p>
        Так сообщение увидят <span safe>{users(audience)}</span>:
      </p>
      <blockquote class="preview" safe>
        {text}
      </blockquote>
      <form hx-target="#broadcast-panel" hx-swap="outerHTML">
        <textarea name="text" hidden safe>
          {text}
        </textarea>
        <button type="submit" hx-post={`${base}/broadcasts`}>
          Отправить
        </button>
        <button type="submit" hx-post={`${base}/broadcasts/edit`} class="secondary">
          Изменить
        </button>
      </form>
    </div>
  );
}

const html = (body: string, status = 200) =>
  new Response(body, { status, headers: { "content-type": "text/html; charset=utf-8" } });

function textOf(body: unknown): string {
  const value = body && typeof body === "object" ? (body as Record<string, unknown>).text : undefined;
  return typeof value === "string" ? value.slice(0, MAX_BROADCAST_TEXT * 4) : "";
}

function idOf(params: { id?: string }): number | null {
  return params.id && /^\d{1,15}$/.test(params.id) ? Number(params.id) : null;
}

/**
 * Routes of the panel's broadcast block, under {BASE_PATH}/broadcasts. Every answer is an HTML fragment for htmx:
 * the settings tab loads GET /broadcasts into its section; a running broadcast polls GET /broadcasts/:id.
 */
export function broadcastRoutes(shop: Shop, config: Config) {
  const base = encodeURI(config.basePath);
  const panel = async (draft?: { text: string; error?: string | undefined }) =>
    await (
      <BroadcastPanel
        base={base}
        audience={await shop.broadcasts.audience()}
        recent={await shop.broadcasts.recent(5)}
        draft={draft}
      />
    );
  const notFound = () => html('<p class="error">Рассылка не найдена</p>', 404);

  return new Elysia({ prefix: "/broadcasts" })
    .use(panelGuard(shop, config))
    .get("", async () => html(await panel()))
    .get("/", async () => html(await panel()))
    .post("/preview", async ({ body }) => {
      const text = textOf(body);
      const problem = broadcastTextProblem(text);
      if (problem) return html(await panel({ text, error: problem }), 422);
      const audience = await shop.broadcasts.audience();
      return html(await (<BroadcastPreview base={base} audience={audience} text={text.trim()} />));
    })
    .post("/edit", async ({ body }) => html(await panel({ text: textOf(body) })))
    .post("", async ({ body, panel: { account } }) => {
      const text = textOf(body);
      const login = account.login;
      try {
        await shop.broadcasts.create({ text, createdBy: `panel:${login}` });
      } catch (error) {
        if (!(error instanceof ShopError)) throw error;
        return html(await panel({ text, error: error.message }), 422);
      }
      log.info("broadcast started from the panel", { login });
      return html(await panel());
    })
    .get("/:id", async ({ params }) => {
      const id = idOf(params);
      const broadcast = id === null ? null : await shop.broadcasts.byId(id);
      if (!broadcast) return notFound();
      return html(await (<BroadcastProgress base={base} broadcast={broadcast} />));
    })
    .post("/:id/cancel", async ({ params }) => {
      const id = idOf(params);
      if (id === null || !(await shop.broadcasts.byId(id))) return notFound();
      const broadcast = await shop.broadcasts.cancel(id);
      return html(await (<BroadcastProgress base={base} broadcast={broadcast} />));
    });
}
