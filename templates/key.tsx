import { escapeHtml } from "@kitajs/html";
import type { KeyCard, Timeline, TimelineActor, TimelineKind, TimelineLine } from "../src/shop/keys/timeline.ts";
import { Badge, CsrfField, DISABLE_WHILE_SENDING, Notice, ORDER_STATUS_LABELS, postTo } from "./components.tsx";
import { count, days, personName, plural, when, wholeStars } from "./format.ts";
import { Layout } from "./layout.tsx";
import { keyStateBadge } from "./users.tsx";
import { href, type View } from "./view.ts";

/**
 * One key's page: what it is now, what can be done to it, and everything that happened to it. Details come from the
 * database (recorded by older or newer versions too) and from outside (a loader's HWID and address, notes): read
 * defensively, escaped where rendered.
 */

const text = (value: unknown): string | null => (typeof value === "string" && value !== "" ? value : null);
const number = (value: unknown): number | null =>
  typeof value === "number" && Number.isFinite(value)
    ? value
    : typeof value === "string" && /^\d{1,18}$/.test(value)
      ? Number(value)
      : null;
const date = (value: unknown): Date | null => {
  const d = typeof value === "string" ? new Date(value) : null;
  return d && !Number.isNaN(d.getTime()) ? d : null;
};
const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max)}…` : s);
const orderNo = (d: Record<string, unknown>) => (number(d.orderId) === null ? "заказа" : `заказа #${d.orderId}`);
const alertNote = (d: Record<string, unknown>) => (number(d.alertId) !== null ? " — по оповещению о передаче" : "");
const times = (n: number) => `${count(n)} ${plural(n, ["раз", "раза", "раз"])}`;

type Details = Record<string, unknown>;

/** Who took the money, as the payments ledger names them. */
const PAYMENT_SOURCES: Record<string, string> = {
  anypay: "AnyPay",
  test: "тестовая оплата",
  telegram_stars: "Telegram Stars",
  promo: "промокод",
};

/**
 * The sentence for each kind of line. The compiler holds this to every kind the shop records (events.ts) and
 * derives (timeline.ts): a new kind does not build until it is worded here.
 */
export const KEY_EVENT_SENTENCES: Record<TimelineKind, (d: Details) => string> = {
  added: (d) =>
    d.origin === "generated" ? "Сгенерирован" : d.origin === "imported" ? "Импортирован" : "Добавлен в магазин",
  reserved: (d) => {
    const parts = [
      number(d.days) !== null ? days(number(d.days)!) : "",
      number(d.rub) !== null ? `${d.rub} ₽` : "",
      text(d.promoCode) ? `промокод ${text(d.promoCode)}` : "",
    ];
    return `Зарезервирован для ${orderNo(d)}${parts.some(Boolean) ? `: ${parts.filter(Boolean).join(", ")}` : ""}`;
  },
  payment: (d) => {
    // Stars as the buyer paid them, "150 ⭐" (the ledger keeps "150.00 XTR").
    const amount =
      d.currency === "XTR" && text(d.amount)
        ? `${wholeStars(text(d.amount)!)} ⭐`
        : [text(d.amount), text(d.currency)].filter(Boolean).join(" ");
    const how = [PAYMENT_SOURCES[String(d.source)] ?? text(d.source) ?? "способ неизвестен", text(d.method)]
      .filter(Boolean)
      .join(", ");
    const outcome =
      d.outcome === "duplicate"
        ? " — повторная оплата уже оплаченного заказа: верните деньги"
        : d.outcome === "no_stock"
          ? " — ключей в тот момент не было"
          : "";
    return `Оплата ${orderNo(d)}: ${amount || "сумма неизвестна"} (${how})${d.test === true ? ", тест" : ""}${outcome}`;
  },
  sold: (d) => `Продан по ${orderNo(d).replace("заказа", "заказу")}`,
  delivery: (d) => {
    switch (d.status) {
      case "sent":
        return "Доставлен покупателю в Telegram";
      case "pending":
        return "Доставка в Telegram ждёт отправки";
      case "blocked":
        return "Не доставлен: покупатель заблокировал бота";
      default:
        return `Не доставлен: Telegram не принял сообщение${text(d.error) ? ` (${clip(text(d.error)!, 120)})` : ""}`;
    }
  },
  activated: (d) => {
    const where = `${text(d.uuid) ? ` на ПК ${clip(text(d.uuid)!, 128)}` : ""}${text(d.ip) ? `, IP ${text(d.ip)}` : ""}`;
    return d.first === false ? `Привязан к новому ПК после сброса HWID${where}` : `Активирован${where}`;
  },
  mismatches: (d) => {
    const n = number(d.count) ?? 0;
    const first = date(d.firstAt);
    const last = date(d.lastAt);
    const span =
      first && last && last.getTime() - first.getTime() >= 60_000 ? `, с ${when(first)} по ${when(last)}` : "";
    const ips = Array.isArray(d.ips) ? d.ips.filter((ip): ip is string => typeof ip === "string") : [];
    return `HWID mismatch: чужой ПК ${clip(text(d.uuid) ?? "?", 128)} — ${times(n)}${span}${ips.length ? `; IP: ${ips.join(", ")}` : ""}`;
  },
  sharing_alert: (d) => {
    const uuids = number(d.uuids) ?? 0;
    const hours = number(d.hours) ?? 0;
    const refusals = number(d.mismatches) ?? 0;
    return (
      `Оповещение администраторам: похоже, ключ передают — ${count(uuids)} ${plural(uuids, ["чужой ПК", "чужих ПК", "чужих ПК"])} ` +
      `за ${count(hours)} ч, ${count(refusals)} ${plural(refusals, ["отказ", "отказа", "отказов"])} «HWID mismatch»` +
      (d.resolution ? "" : "; решения пока нет")
    );
  },
  hwid_reset: (d) => `HWID сброшен${text(d.uuid) ? ` (был ${clip(text(d.uuid)!, 128)})` : ""}${alertNote(d)}`,
  banned: (d) => `Забанен${alertNote(d)}`,
  unbanned: () => "Разбанен",
  extended: (d) =>
    `Продлён на ${days(number(d.days) ?? 0)}${date(d.expiresAt) ? `, теперь до ${when(date(d.expiresAt))}` : ""}`,
  renewed: (d) =>
    `Продлён покупателем на ${days(number(d.days) ?? 0)} (заказ #${number(d.orderId) ?? "?"})` +
    (date(d.expiresAt)
      ? `, теперь до ${when(date(d.expiresAt))}`
      : `, ещё не активирован: срок ${days(number(d.renewedDays) ?? 0)} сверх длительности начнётся с активации`),
  compensated: (d) =>
    `Компенсация за простой: +${days(number(d.days) ?? 0)}${date(d.expiresAt) ? `, теперь до ${when(date(d.expiresAt))}` : ""}`,
  note: (d) => (text(d.note) ? `Заметка: «${clip(text(d.note)!, 500)}»` : "Заметка удалена"),
  issued: (d) =>
    `Выдан без оплаты${number(d.to) !== null ? ` пользователю ${d.to}` : ""}${text(d.note) ? `: «${clip(text(d.note)!, 500)}»` : ""}`,
  alert_ignored: () => "Оповещение о передаче: оставлен как есть",
};

export function timelineSentence(line: TimelineLine): string {
  const sentence = KEY_EVENT_SENTENCES[line.kind as TimelineKind];
  return sentence ? sentence(line.details) : `Событие «${clip(line.kind, 40)}»`;
}

/** Who did it, linked to the user's page when it is a Telegram user. */
function Who({ view, actor }: { view: View; actor: TimelineActor | null }) {
  if (!actor) return "";
  switch (actor.role) {
    case "panel":
      return <span class="sub" safe>{`${actor.login}, панель`}</span>;
    case "admin":
    case "buyer": {
      const name =
        actor.name || actor.username
          ? personName({ firstName: actor.name, username: actor.username })
          : String(actor.telegramId);
      return (
        <a class="sub" href={href(view, `/users/${actor.telegramId}`)} safe>
          {`${name}, ${actor.role === "admin" ? "администратор в боте" : "покупатель"}`}
        </a>
      );
    }
    case "cli":
      return <span class="sub">оператор, CLI</span>;
    case "loader":
      return <span class="sub">лоадер</span>;
    case "system":
      return <span class="sub">магазин</span>;
  }
}

export function KeyTimeline({ view, timeline }: { view: View; timeline: Timeline }) {
  return (
    <section class="card" id="key-timeline">
      <h2>История</h2>
      {timeline.lines.length === 0 ? (
        <p class="empty">Событий нет.</p>
      ) : (
        <ol class="log">
          {timeline.lines.map((line) => (
            <li class={`line-${escapeHtml(line.kind)}`}>
              <time datetime={line.at.toISOString()} safe>
                {when(line.at)}
              </time>
              <span class="event" safe>
                {timelineSentence(line)}
              </span>
              <Who view={view} actor={line.actor} />
            </li>
          ))}
        </ol>
      )}
      {timeline.more ? <p class="hint" safe>{`Показаны последние ${count(timeline.lines.length)} событий.`}</p> : ""}
    </section>
  );
}

function Facts({ view, k }: { view: View; k: KeyCard }) {
  return (
    <section class="card">
      <h2>Ключ</h2>
      <dl class="facts">
        <dt>Товар</dt>
        <dd>
          <a href={href(view, `/products/${k.productId}`)} safe>
            {k.productName}
          </a>{" "}
          <span class="sub" safe>
            {days(k.days)}
          </span>
        </dd>
        <dt>Состояние</dt>
        <dd>
          {k.state === "sold" ? (
            keyStateBadge(k)
          ) : k.state === "reserved" ? (
            <Badge tone="warn">зарезервирован</Badge>
          ) : (
            <Badge tone="ok">в продаже</Badge>
          )}
        </dd>
        <dt>Покупатель</dt>
        <dd>
          {k.buyerId !== null ? (
            <a href={href(view, `/users/${k.buyerId}`)} safe>
              {k.buyerName || k.buyerUsername
                ? personName({ firstName: k.buyerName, username: k.buyerUsername })
                : String(k.buyerId)}
            </a>
          ) : k.gift ? (
            "выдан без оплаты, без получателя"
          ) : (
            "—"
          )}
        </dd>
        <dt>Заказ</dt>
        <dd>
          {k.order ? (
            <a href={href(view, `/orders/${k.order.id}`)} safe>
              {`#${k.order.id} — ${ORDER_STATUS_LABELS[k.order.status as keyof typeof ORDER_STATUS_LABELS] ?? k.order.status}`}
            </a>
          ) : k.gift ? (
            "без оплаты"
          ) : (
            "—"
          )}
        </dd>
        <dt>HWID</dt>
        <dd class="mono" safe>
          {k.hwid ?? "—"}
        </dd>
        <dt>Активирован</dt>
        <dd safe>{when(k.activatedAt)}</dd>
        <dt>Истекает</dt>
        <dd>
          {escapeHtml(
            k.expiresAt
              ? when(k.expiresAt)
              : k.state !== "sold"
                ? "—"
                : k.renewedDays > 0
                  ? `через ${days(k.days + k.renewedDays)} после первой активации (${days(k.days)} + ${days(k.renewedDays)} продления)`
                  : "с первой активации",
          )}
        </dd>
        <dt>Последняя проверка</dt>
        <dd>{escapeHtml(k.lastAuthAt ? `${when(k.lastAuthAt)}${k.lastAuthIp ? `, IP ${k.lastAuthIp}` : ""}` : "—")}</dd>
        <dt>Заметка</dt>
        <dd class="note-text" safe>
          {k.note || "—"}
        </dd>
      </dl>
    </section>
  );
}

function Actions({ view, k }: { view: View; k: KeyCard }) {
  const post = (name: string) => ({
    ...postTo(href(view, `/keys/${k.id}/${name}`), "#key-main"),
    ...DISABLE_WHILE_SENDING,
  });
  const sold = k.state === "sold";
  return (
    <section class="card stack">
      <h2>Действия</h2>
      {sold ? (
        ""
      ) : (
        <p class="hint">Ключ ещё не продан: сбросить HWID, забанить и продлить можно только проданный ключ.</p>
      )}
      <div class="actions">
        <form {...post("reset-hwid")} hx-confirm="Сбросить HWID? Ключ привяжется к следующему ПК, срок не изменится.">
          <CsrfField view={view} />
          <button type="submit" disabled={!sold || !k.hwid}>
            Сбросить HWID
          </button>
        </form>
        <form
          {...post(k.bannedAt ? "unban" : "ban")}
          hx-confirm={k.bannedAt ? undefined : "Забанить ключ? Лоадер получит «Key banned»."}
        >
          <CsrfField view={view} />
          <button type="submit" class={k.bannedAt ? "" : "danger"} disabled={!sold}>
            {k.bannedAt ? "Разбанить" : "Забанить"}
          </button>
        </form>
      </div>
      <form {...post("extend")} class="actions">
        <CsrfField view={view} />
        <label>
          <span class="visually-hidden">Дней</span>
          <input name="days" type="number" min="1" max="3650" value="1" required class="tiny" />
        </label>
        <button type="submit" disabled={!sold || !k.expiresAt}>
          Продлить на N дней
        </button>
      </form>
      <form {...post("note")} class="stack">
        <CsrfField view={view} />
        <label for="f-note">Заметка (видна только в панели)</label>
        <textarea id="f-note" name="note" rows="2" maxlength="500" safe>
          {k.note}
        </textarea>
        <div class="actions">
          <button type="submit">Сохранить заметку</button>
        </div>
      </form>
    </section>
  );
}

export type KeyMainProps = {
  view: View;
  card: KeyCard;
  timeline: Timeline;
  notice?: { kind: "ok" | "error"; text: string } | undefined;
};

/** Everything below the crumbs: swapped whole after an action, so the state, the buttons and the history agree. */
export function KeyMain({ view, card, timeline, notice }: KeyMainProps) {
  return (
    <div id="key-main" class="stack">
      <div class="title-row">
        <h1 class="mono key-title" safe>
          {card.key}
        </h1>
        {card.state === "sold" ? keyStateBadge(card) : ""}
      </div>
      {notice ? (
        <Notice kind={notice.kind}>
          <span safe>{notice.text}</span>
        </Notice>
      ) : (
        ""
      )}
      <div class="grid-2">
        <Facts view={view} k={card} />
        <Actions view={view} k={card} />
      </div>
      <KeyTimeline view={view} timeline={timeline} />
    </div>
  );
}

export function KeyPage(props: KeyMainProps) {
  const { view, card } = props;
  const list = card.state === "sold" ? "sold" : "unsold";
  return (
    <Layout view={view} title={`Ключ ${card.key}`} tab="products">
      <p class="crumbs">
        <a href={href(view, `/products/${card.productId}/keys`, { list, q: card.key })} safe>
          {`← ${card.productName}`}
        </a>
      </p>
      <KeyMain {...props} />
    </Layout>
  );
}
