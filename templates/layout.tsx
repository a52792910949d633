import type { Children } from "@kitajs/html";
import { CsrfField } from "./components.tsx";
import { href, type View } from "./view.ts";

export type Tab = "dashboard" | "settings" | "admins" | "users" | "products" | "orders" | "promos" | "account";

const TABS: { tab: Tab; path: string; label: string }[] = [
  { tab: "dashboard", path: "/", label: "Главная" },
  { tab: "settings", path: "/settings", label: "Основные настройки" },
  { tab: "admins", path: "/admins", label: "Администраторы" },
  { tab: "users", path: "/users", label: "Пользователи" },
  { tab: "products", path: "/products", label: "Продукты" },
  { tab: "orders", path: "/orders", label: "Заказы" },
  { tab: "promos", path: "/promos", label: "Промокоды" },
];

function Head(props: { view: View; title: string }) {
  return (
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="robots" content="noindex, nofollow" />
      <meta name="referrer" content="same-origin" />
      <title safe>{`${props.title} — Morpheus Shop`}</title>
      <link rel="stylesheet" href={props.view.assets["panel.css"]} />
      {/* Without it every page asks the site root for /favicon.ico, which is not the panel's (a 404). */}
      <link rel="icon" type="image/svg+xml" href={props.view.assets["favicon.svg"]} />
      <script src={props.view.assets["htmx.min.js"]} defer />
      <script src={props.view.assets["panel.js"]} defer />
    </head>
  );
}

/**
 * The number on the Заказы tab: orders waiting for the owner. Always present (empty at zero) so an action's answer
 * can replace it out of band (`oob`) after it changed the count.
 */
export function OrdersBadge(props: { count: number | undefined; oob?: boolean }) {
  const oob = props.oob ? { "hx-swap-oob": "true" } : {};
  if (!props.count) return <span id="orders-badge" {...oob} />;
  return (
    <span id="orders-badge" class="tab-badge" title="Заказы, которые ждут вас" {...oob} safe>
      {String(props.count)}
    </span>
  );
}

/**
 * Where an htmx request's error is shown (the panel's error answer retargets here): above the page, so the form
 * the owner was filling stays as it was.
 */
function AlertBar() {
  return <div id="panel-alert" class="panel-alert" aria-live="assertive" />;
}

/**
 * Every page of the logged-in panel. <body> carries the CSRF token for every htmx request (hx-headers, inherited)
 * and boosts links and forms, so moving between tabs swaps the body without reloading scripts and styles.
 */
export function Layout(props: { view: View; title: string; tab: Tab; children: Children }) {
  const { view } = props;
  return (
    <>
      {"<!doctype html>"}
      <html lang="ru">
        <Head view={view} title={props.title} />
        <body hx-boost:inherited="true" hx-headers:inherited={JSON.stringify({ "X-CSRF-Token": view.csrf })}>
          <header class="topbar">
            <a class="brand" href={href(view, "/")}>
              Morpheus <span>Shop</span>
            </a>
            <details class="account">
              <summary safe>{view.login}</summary>
              <div class="account-menu">
                <a href={href(view, "/account")}>Сменить пароль</a>
                <form method="post" action={href(view, "/logout")}>
                  <CsrfField view={view} />
                  <button type="submit" class="link">
                    Выйти
                  </button>
                </form>
              </div>
            </details>
          </header>
          <nav class="tabs" aria-label="Разделы">
            {TABS.map((t) => (
              <a
                href={href(view, t.path)}
                class={t.tab === props.tab ? "active" : ""}
                aria-current={t.tab === props.tab ? "page" : undefined}
              >
                <span safe>{t.label}</span>
                {t.tab === "orders" ? <OrdersBadge count={view.needsOwner} /> : ""}
              </a>
            ))}
          </nav>
          <main id="main">
            <AlertBar />
            {props.children}
          </main>
        </body>
      </html>
    </>
  );
}

/** The login page's frame: no navigation, no session token. */
export function AuthLayout(props: { view: View; title: string; children: Children }) {
  return (
    <>
      {"<!doctype html>"}
      <html lang="ru">
        <Head view={props.view} title={props.title} />
        <body class="auth">
          <main class="auth-box">
            <AlertBar />
            <p class="brand">
              Morpheus <span>Shop</span>
            </p>
            {props.children}
          </main>
        </body>
      </html>
    </>
  );
}

/**
 * A whole page that says what went wrong, with a way back: never a blank page. With a logged-in view it has the
 * tabs; without one (no session, or no view at all) it has the login page's frame.
 */
export function ErrorPage(props: { view: View | null; status: number; message: string }) {
  const { view } = props;
  const title = props.status === 404 ? "Не найдено" : props.status >= 500 ? "Ошибка" : "Запрос отклонён";
  const body = (
    <section class="card">
      <h1>{title}</h1>
      <p safe>{props.message}</p>
      <p>
        <a href={view ? href(view, "/") : "/"}>{view?.login ? "На главную" : "Ко входу в панель"}</a>
      </p>
    </section>
  );
  if (!view) return `<!doctype html><html lang="ru"><body>${body}</body></html>`;
  if (!view.login) {
    return (
      <AuthLayout view={view} title={title}>
        {body}
      </AuthLayout>
    );
  }
  return (
    <Layout view={view} title={title} tab="dashboard">
      {body}
    </Layout>
  );
}

/** The same message as a fragment, for an htmx request that expected one part of the page. */
export function ErrorFragment(props: { status: number; message: string }) {
  return (
    <div class="notice notice-error" role="alert">
      <strong>{props.status === 404 ? "Не найдено. " : props.status >= 500 ? "Ошибка. " : ""}</strong>
      <span class="message" safe>
        {props.message}
      </span>
      <button type="button" class="dismiss" data-dismiss aria-label="Закрыть">
        ×
      </button>
    </div>
  );
}
