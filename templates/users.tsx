import { escapeHtml } from "@kitajs/html";
import type { Page } from "../src/shop/lists.ts";
import type { OrderListItem } from "../src/shop/orders/lists.ts";
import type { UserEvent, UserKey, UserListItem, UserSort, UserStats } from "../src/shop/users/lists.ts";
import type { BotUser } from "../src/shop/users/users.ts";
import { Badge, Pager, ProductDuration } from "./components.tsx";
import { EventLog } from "./events.tsx";
import { count, personName, plural, rub, stars, when } from "./format.ts";
import { Layout } from "./layout.tsx";
import { OrdersTable } from "./order-parts.tsx";
import { href, type View } from "./view.ts";

export type UsersQuery = { q: string; sort: UserSort };

const SORT_LABELS: Record<UserSort, string> = {
  last_seen: "по последней активности",
  first_seen: "новые первыми",
  id: "по Telegram ID",
};

/** The list part of the Users tab: the same fragment for the full page and for a search or page turn. */
export function UsersList(props: { view: View; query: UsersQuery; page: Page<UserListItem> & { total: number } }) {
  const { view, query, page } = props;
  const link = (cursor: { after?: string; before?: string }) =>
    href(view, "/users", { q: query.q, sort: query.sort === "last_seen" ? undefined : query.sort, ...cursor });
  return (
    <div id="users-list">
      <p class="count">
        {escapeHtml(
          query.q
            ? `Найдено: ${count(page.total)}`
            : `Всего ${count(page.total)} ${plural(page.total, ["пользователь", "пользователя", "пользователей"])}`,
        )}
      </p>
      {page.rows.length === 0 ? (
        <p class="empty">{query.q ? "Никого не нашлось." : "В бот ещё никто не заходил."}</p>
      ) : (
        <div class="table-wrap">
          <table class="table cards">
            <thead>
              <tr>
                <th>Пользователь</th>
                <th>Telegram ID</th>
                <th>Первый визит</th>
                <th>Последний визит</th>
                <th class="num">Заказы</th>
                <th class="num">Оплачено</th>
              </tr>
            </thead>
            <tbody>
              {page.rows.map((u) => (
                <tr>
                  <td data-label="Пользователь">
                    <a href={href(view, `/users/${u.telegramId}`)} safe>
                      {personName(u)}
                    </a>
                    {u.blockedAt ? <Badge tone="muted">заблокировал бота</Badge> : ""}
                  </td>
                  <td data-label="Telegram ID" safe>
                    {String(u.telegramId)}
                  </td>
                  <td data-label="Первый визит" safe>
                    {when(u.firstSeenAt)}
                  </td>
                  <td data-label="Последний визит" safe>
                    {when(u.lastSeenAt)}
                  </td>
                  <td data-label="Заказы" class="num">
                    {escapeHtml(count(u.orders))}
                  </td>
                  <td data-label="Оплачено" class="num">
                    {escapeHtml(rub(u.paidRub))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Pager prev={page.prev} next={page.next} hrefFor={link} target="#users-list" />
    </div>
  );
}

export function UsersPage(props: { view: View; query: UsersQuery; page: Page<UserListItem> & { total: number } }) {
  const { view, query } = props;
  return (
    <Layout view={view} title="Пользователи" tab="users">
      <h1>Пользователи</h1>
      <form
        class="filters"
        method="get"
        action={href(view, "/users")}
        hx-get={href(view, "/users")}
        hx-trigger="input delay:300ms, change, submit"
        hx-target="#users-list"
        hx-swap="outerHTML"
        hx-push-url="true"
        hx-sync="this:replace"
      >
        <label class="grow">
          <span class="visually-hidden">Поиск</span>
          <input
            type="search"
            name="q"
            value={query.q}
            maxlength="128"
            placeholder="ID, @username, имя или фамилия"
            autocomplete="off"
          />
        </label>
        <label>
          <span class="visually-hidden">Сортировка</span>
          <select name="sort">
            {(Object.keys(SORT_LABELS) as UserSort[]).map((s) => (
              <option value={s} selected={s === query.sort} safe>
                {SORT_LABELS[s]}
              </option>
            ))}
          </select>
        </label>
        <noscript>
          <button type="submit">Найти</button>
        </noscript>
      </form>
      <UsersList {...props} />
    </Layout>
  );
}

export function UserEvents(props: { view: View; userId: number; page: Page<UserEvent> }) {
  const { view, userId, page } = props;
  const link = (cursor: { after?: string; before?: string }) => href(view, `/users/${userId}/events`, cursor);
  return (
    <div id="user-events">
      <EventLog view={view} events={page.rows} empty="Событий нет." />
      <Pager prev={page.prev} next={page.next} hrefFor={link} target="#user-events" />
    </div>
  );
}

export function UserOrders(props: { view: View; userId: number; page: Page<OrderListItem> }) {
  const { view, userId, page } = props;
  const link = (cursor: { after?: string; before?: string }) => href(view, `/users/${userId}/orders`, cursor);
  return (
    <div id="user-orders">
      {page.rows.length === 0 ? (
        <p class="empty">Заказов нет.</p>
      ) : (
        <OrdersTable view={view} orders={page.rows} createdLabel="Создан" buyer="none" linkProduct payment="paidAt" />
      )}
      <Pager prev={page.prev} next={page.next} hrefFor={link} target="#user-orders" />
    </div>
  );
}

export function keyStateBadge(
  k: { bannedAt: Date | null; expiresAt: Date | null; hwid: string | null },
  now = new Date(),
) {
  if (k.bannedAt) return <Badge tone="bad">забанен</Badge>;
  if (!k.expiresAt) return <Badge tone="info">не активирован</Badge>;
  if (k.expiresAt <= now) return <Badge tone="muted">истёк</Badge>;
  if (!k.hwid) return <Badge tone="warn">активен, HWID сброшен</Badge>;
  return <Badge tone="ok">активен</Badge>;
}

export type UserPageProps = {
  view: View;
  user: BotUser;
  stats: UserStats;
  keys: UserKey[];
  orders: Page<OrderListItem>;
  events: Page<UserEvent>;
  isAdmin: boolean;
};

export function UserPage(props: UserPageProps) {
  const { view, user, stats } = props;
  return (
    <Layout view={view} title={personName(user)} tab="users">
      <p class="crumbs">
        <a href={href(view, "/users")}>← Пользователи</a>
      </p>
      <h1 safe>{personName(user)}</h1>
      <p class="meta">
        <span safe>{`Telegram ID ${user.telegramId}`}</span>
        {user.username ? (
          <a
            href={`https://t.me/${encodeURIComponent(user.username)}`}
            rel="noopener noreferrer"
            target="_blank"
            safe
          >{`@${user.username}`}</a>
        ) : (
          ""
        )}
        {user.languageCode ? <span safe>{`язык ${user.languageCode}`}</span> : ""}
        {props.isAdmin ? <Badge tone="info">администратор бота</Badge> : ""}
        {user.blockedAt ? <Badge tone="muted">{escapeHtml(`заблокировал бота ${when(user.blockedAt)}`)}</Badge> : ""}
      </p>
      <section class="stats" aria-label="Статистика">
        <div class="stat">
          <p class="stat-label">Оплачено</p>
          <p class="stat-value" safe>
            {rub(stats.paidRub)}
          </p>
          <p class="stat-sub" safe>
            {`${stats.paidStars > 0 ? `и ${stars(stats.paidStars)}, ` : ""}${count(stats.paidOrders)} из ${count(stats.orders)} заказов` +
              (stats.paidRenewals > 0 ? `, из них продлений: ${count(stats.paidRenewals)}` : "")}
          </p>
        </div>
        <div class="stat">
          <p class="stat-label">Ключей</p>
          <p class="stat-value" safe>
            {count(stats.keys)}
          </p>
          <p class="stat-sub">{stats.lastPaidAt ? `последняя покупка ${when(stats.lastPaidAt)}` : "покупок не было"}</p>
        </div>
        <div class="stat">
          <p class="stat-label">В боте</p>
          <p class="stat-value small" safe>
            {when(user.firstSeenAt)}
          </p>
          <p class="stat-sub" safe>{`последний визит ${when(user.lastSeenAt)}`}</p>
        </div>
      </section>
      <section class="card">
        <h2>Ключи</h2>
        {props.keys.length === 0 ? (
          <p class="empty">Ключей нет.</p>
        ) : (
          <div class="table-wrap">
            <table class="table cards">
              <thead>
                <tr>
                  <th>Ключ</th>
                  <th>Товар</th>
                  <th>Состояние</th>
                  <th>Продан</th>
                  <th>Истекает</th>
                  <th>HWID</th>
                </tr>
              </thead>
              <tbody>
                {props.keys.map((k) => (
                  <tr>
                    <td data-label="Ключ">
                      <a class="mono" href={href(view, `/keys/${k.id}`)} safe>
                        {k.key}
                      </a>
                    </td>
                    <td data-label="Товар">
                      <ProductDuration
                        view={view}
                        productId={k.productId}
                        productName={k.productName}
                        days={k.days}
                        link={false}
                      />
                      {k.gift ? <Badge tone="muted">без оплаты</Badge> : ""}
                    </td>
                    <td data-label="Состояние">{keyStateBadge(k)}</td>
                    <td data-label="Продан" safe>
                      {when(k.soldAt)}
                    </td>
                    <td data-label="Истекает">{k.expiresAt ? when(k.expiresAt) : "с первой активации"}</td>
                    <td data-label="HWID" class="mono" safe>
                      {k.hwid ?? "—"}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section class="card">
        <h2>Заказы</h2>
        <UserOrders view={view} userId={user.telegramId} page={props.orders} />
      </section>
      <section class="card">
        <h2>Журнал действий</h2>
        <UserEvents view={view} userId={user.telegramId} page={props.events} />
      </section>
    </Layout>
  );
}
