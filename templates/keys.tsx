import { escapeHtml } from "@kitajs/html";
import { DURATIONS, type DurationDays } from "../src/lib/durations.ts";
import type { KeyList, KeyListItem } from "../src/shop/keys/lists.ts";
import type { Page } from "../src/shop/lists.ts";
import { Badge, CsrfField, Pager, postTo } from "./components.tsx";
import { count, days, personName, when } from "./format.ts";
import { keyStateBadge } from "./users.tsx";
import { href, type View } from "./view.ts";

/** A product's unsold and sold keys: tabs, filters, the list with its pager, the CSV export. */

export type KeysQuery = { list: KeyList; days: DurationDays | undefined; q: string };

export type KeyCounts = { unsold: number; sold: number };

/** Why an action on one key was refused, shown in that key's row (a plain form post renders the whole page). */
export type KeyRowError = { keyId: number; message: string };

function keysUrl(view: View, productId: number, query: KeysQuery, extra: Record<string, string | undefined> = {}) {
  return href(view, `/products/${productId}/keys`, { list: query.list, days: query.days, q: query.q, ...extra });
}

/** One sold key with everything support needs and the actions on it; re-rendered alone after each action. */
export function SoldKeyRow(props: {
  view: View;
  productId: number;
  k: KeyListItem;
  error?: string | undefined;
  saved?: string | undefined;
}) {
  const { view, productId, k } = props;
  const action = (name: string) => href(view, `/products/${productId}/keys/${k.id}/${name}`);
  const post = (name: string) => postTo(action(name), "closest tr");
  return (
    <tr id={`key-${k.id}`}>
      <td data-label="Ключ">
        <a class="mono key" href={href(view, `/keys/${k.id}`)} safe>
          {k.key}
        </a>
        <span class="sub" safe>
          {days(k.days)}
        </span>
        {props.error ? (
          <p class="field-error" role="alert" safe>
            {props.error}
          </p>
        ) : (
          ""
        )}
        {props.saved ? (
          <p class="ok-text" role="status" safe>
            {props.saved}
          </p>
        ) : (
          ""
        )}
      </td>
      <td data-label="Покупатель">
        {k.buyerId !== null ? (
          <a href={href(view, `/users/${k.buyerId}`)} safe>
            {personName({ firstName: k.buyerName, username: k.buyerUsername })}
          </a>
        ) : (
          "—"
        )}
        {k.orderId !== null ? (
          <a class="sub" href={href(view, `/orders/${k.orderId}`)} safe>{`заказ #${k.orderId}`}</a>
        ) : k.gift ? (
          <span class="sub">без оплаты</span>
        ) : (
          ""
        )}
      </td>
      <td data-label="Продан" safe>
        {when(k.soldAt)}
      </td>
      <td data-label="HWID" class="mono hwid" safe>
        {k.hwid ?? "—"}
      </td>
      <td data-label="Активирован" safe>
        {when(k.activatedAt)}
      </td>
      <td data-label="Истекает">
        {k.expiresAt ? when(k.expiresAt) : "—"} {keyStateBadge(k)}
      </td>
      <td data-label="Заметка" class="note">
        <div class="note-text" safe>
          {k.note || "—"}
        </div>
      </td>
      <td class="row-actions">
        <details class="menu">
          <summary>Действия</summary>
          <div class="menu-body">
            <form
              {...post("reset-hwid")}
              hx-confirm="Сбросить HWID? Ключ привяжется к следующему ПК, срок не изменится."
            >
              <CsrfField view={view} />
              <button type="submit" class="small" disabled={!k.hwid}>
                Сбросить HWID
              </button>
            </form>
            <form
              {...post(k.bannedAt ? "unban" : "ban")}
              hx-confirm={k.bannedAt ? undefined : "Забанить ключ? Лоадер получит «Key banned»."}
            >
              <CsrfField view={view} />
              <button type="submit" class={k.bannedAt ? "small" : "small danger"}>
                {k.bannedAt ? "Разбанить" : "Забанить"}
              </button>
            </form>
            <form {...post("extend")} class="inline">
              <CsrfField view={view} />
              <label>
                <span class="visually-hidden">Дней</span>
                <input name="days" type="number" min="1" max="3650" value="1" required class="tiny" />
              </label>
              <button type="submit" class="small" disabled={!k.expiresAt}>
                Продлить на N дней
              </button>
            </form>
            <form {...post("note")} class="inline">
              <CsrfField view={view} />
              <label>
                <span class="visually-hidden">Заметка</span>
                <input name="note" maxlength="500" value={k.note} placeholder="Заметка" />
              </label>
              <button type="submit" class="small">
                Сохранить
              </button>
            </form>
          </div>
        </details>
      </td>
    </tr>
  );
}

/** One unsold key (available, or reserved for an unpaid order); an available one can be deleted. */
export function UnsoldKeyRow(props: { view: View; productId: number; k: KeyListItem; error?: string | undefined }) {
  const { view, productId, k } = props;
  const del = href(view, `/products/${productId}/keys/${k.id}/delete`);
  return (
    <tr id={`key-${k.id}`}>
      <td data-label="Ключ">
        <a class="mono key" href={href(view, `/keys/${k.id}`)} safe>
          {k.key}
        </a>
        {props.error ? (
          <p class="field-error" role="alert" safe>
            {props.error}
          </p>
        ) : (
          ""
        )}
      </td>
      <td data-label="Длительность" safe>
        {days(k.days)}
      </td>
      <td data-label="Состояние">
        {k.state === "reserved" ? (
          <>
            <Badge tone="warn">зарезервирован</Badge>
            {k.orderId !== null ? (
              <a class="sub" href={href(view, `/orders/${k.orderId}`)} safe>{`заказ #${k.orderId}`}</a>
            ) : (
              ""
            )}
          </>
        ) : (
          <Badge tone="ok">в продаже</Badge>
        )}
      </td>
      <td data-label="Добавлен" safe>
        {when(k.createdAt)}
      </td>
      <td class="row-actions">
        {k.state === "available" ? (
          <form {...postTo(del, "closest tr")} hx-confirm="Удалить ключ?">
            <CsrfField view={view} />
            <button type="submit" class="small danger">
              Удалить
            </button>
          </form>
        ) : (
          ""
        )}
      </td>
    </tr>
  );
}

/**
 * The list with its pager and the CSV export: swapped alone when filtering or turning pages, so the export link
 * always carries the filter the owner is looking at.
 */
export function KeyListBlock(props: {
  view: View;
  productId: number;
  query: KeysQuery;
  page: Page<KeyListItem>;
  rowError?: KeyRowError | undefined;
}) {
  const { view, productId, query, page } = props;
  const errorOf = (k: KeyListItem) => (props.rowError?.keyId === k.id ? props.rowError.message : undefined);
  const sold = query.list === "sold";
  const link = (cursor: { after?: string; before?: string }) => keysUrl(view, productId, query, cursor);
  const csv = href(view, `/products/${productId}/keys.csv`, { list: query.list, days: query.days, q: query.q });
  const filtered = query.q !== "" || query.days !== undefined;
  return (
    <div id="key-list">
      <p class="list-bar">
        <a
          id="keys-csv"
          class="button small"
          href={csv}
          download=""
          hx-boost="false"
          title={filtered ? "Ключи по текущему фильтру" : "Все ключи этого списка"}
        >
          {filtered ? "Экспорт CSV (по фильтру)" : "Экспорт CSV"}
        </a>
      </p>
      {page.rows.length === 0 ? (
        <p class="empty">
          {query.q || query.days
            ? "Ничего не нашлось."
            : sold
              ? "Проданных ключей пока нет."
              : "Непроданных ключей нет: сгенерируйте или импортируйте их выше."}
        </p>
      ) : (
        <div class="table-wrap">
          <table class="table cards keys">
            <thead>
              {sold ? (
                <tr>
                  <th>Ключ</th>
                  <th>Покупатель</th>
                  <th>Продан</th>
                  <th>HWID</th>
                  <th>Активирован</th>
                  <th>Истекает</th>
                  <th>Заметка</th>
                  <th />
                </tr>
              ) : (
                <tr>
                  <th>Ключ</th>
                  <th>Длительность</th>
                  <th>Состояние</th>
                  <th>Добавлен</th>
                  <th />
                </tr>
              )}
            </thead>
            <tbody>
              {page.rows.map((k) =>
                sold ? (
                  <SoldKeyRow view={view} productId={productId} k={k} error={errorOf(k)} />
                ) : (
                  <UnsoldKeyRow view={view} productId={productId} k={k} error={errorOf(k)} />
                ),
              )}
            </tbody>
          </table>
        </div>
      )}
      <Pager prev={page.prev} next={page.next} hrefFor={link} target="#key-list" />
    </div>
  );
}

export function KeysSection(props: {
  view: View;
  productId: number;
  query: KeysQuery;
  page: Page<KeyListItem>;
  counts: KeyCounts;
  rowError?: KeyRowError | undefined;
}) {
  const { view, productId, query, counts } = props;
  const tab = (list: KeyList, label: string, n: number) => {
    const url = keysUrl(view, productId, { list, days: undefined, q: "" });
    return (
      <a
        href={url}
        hx-get={url}
        hx-target="#keys"
        hx-swap="outerHTML"
        hx-push-url="true"
        class={query.list === list ? "active" : ""}
        aria-current={query.list === list ? "true" : undefined}
      >
        <span safe>{label}</span>{" "}
        <span class="chip-count" safe>
          {count(n)}
        </span>
      </a>
    );
  };
  // The refresh after keys change sends the filter form's current values (hx-include replaces the URL's), so it
  // keeps what the owner typed rather than the filter this section was first rendered with.
  return (
    <section
      id="keys"
      class="card"
      hx-get={keysUrl(view, productId, query)}
      hx-include="#key-filters"
      hx-trigger="keys-changed from:body"
      hx-target="this"
      hx-swap="outerHTML"
    >
      <h2>Ключи</h2>
      <nav class="subtabs" aria-label="Ключи">
        {tab("unsold", "Непроданные", counts.unsold)}
        {tab("sold", "Проданные", counts.sold)}
      </nav>
      <form
        id="key-filters"
        class="filters"
        method="get"
        action={href(view, `/products/${productId}/keys`)}
        hx-get={href(view, `/products/${productId}/keys`)}
        hx-trigger="input delay:300ms, change, submit"
        hx-target="#key-list"
        hx-swap="outerHTML"
        hx-push-url="true"
        hx-sync="this:replace"
      >
        <input type="hidden" name="list" value={query.list} />
        <label>
          <span class="visually-hidden">Длительность</span>
          <select name="days">
            <option value="">все сроки</option>
            {DURATIONS.map((d) => (
              <option value={String(d)} selected={query.days === d}>
                {escapeHtml(days(d))}
              </option>
            ))}
          </select>
        </label>
        <label class="grow">
          <span class="visually-hidden">Поиск</span>
          <input
            type="search"
            name="q"
            value={query.q}
            maxlength="128"
            autocomplete="off"
            placeholder={query.list === "sold" ? "Ключ, HWID, покупатель, № заказа" : "Начало ключа"}
            title={query.list === "sold" ? "Начало ключа, HWID, Telegram ID покупателя или номер заказа" : undefined}
          />
        </label>
        <noscript>
          <button type="submit">Найти</button>
        </noscript>
      </form>
      <KeyListBlock view={view} productId={productId} query={query} page={props.page} rowError={props.rowError} />
    </section>
  );
}
