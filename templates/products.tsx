import { escapeHtml } from "@kitajs/html";
import { DURATIONS, type DurationDays } from "../src/lib/durations.ts";
import type { KeyListItem } from "../src/shop/keys/lists.ts";
import type { Page } from "../src/shop/lists.ts";
import { MAX_BUILD_BYTES } from "../src/shop/products/builds.ts";
import { MAX_PRODUCT_NAME, type Product } from "../src/shop/products/products.ts";
import type { StockLine } from "../src/shop/products/stock.ts";
import { Badge, CsrfField, DISABLE_WHILE_SENDING, Field, Notice, postTo } from "./components.tsx";
import { count, days, rub, size, when } from "./format.ts";
import { CompensateForm, GenerateForm, ImportForm, IssueForm } from "./key-forms.tsx";
import { type KeyCounts, type KeyRowError, type KeysQuery, KeysSection } from "./keys.tsx";
import { Layout } from "./layout.tsx";
import { type LicenceApiProps, LicenceApiSection } from "./licence-api.tsx";
import { type FieldErrors, href, type View } from "./view.ts";

/**
 * A browser's maxlength counts UTF-16 units, the shop counts characters (code points): an emoji is two units. The
 * field lets through every name the shop accepts, and the check under it (and the server) refuses a longer one.
 */
const MAX_PRODUCT_NAME_UNITS = 2 * MAX_PRODUCT_NAME;

// ---- the list ---------------------------------------------------------------------------------------------------

export type CreateFormProps = { view: View; errors?: FieldErrors; values?: { name?: string; description?: string } };

/** Name check while typing: the message under the name field, or nothing when the name is fine. */
export function NameCheck(props: { problem: string | null }) {
  return (
    <p id="name-check" class={props.problem ? "field-error" : "hint"} aria-live="polite" safe>
      {props.problem ?? ""}
    </p>
  );
}

export function CreateProductForm(props: CreateFormProps) {
  const { view } = props;
  const e = props.errors ?? {};
  return (
    <form
      id="product-create"
      class="card stack"
      {...postTo(href(view, "/products"), "this")}
      {...DISABLE_WHILE_SENDING}
    >
      <h2>Новый продукт</h2>
      <CsrfField view={view} />
      <div class={`field ${e.name ? "has-error" : ""}`}>
        <label for="f-name">Название</label>
        <input
          id="f-name"
          name="name"
          required
          maxlength={String(MAX_PRODUCT_NAME_UNITS)}
          autocomplete="off"
          value={props.values?.name ?? ""}
          placeholder="например, Stalcraft"
          hx-get={href(view, "/products/check-name")}
          hx-trigger="input changed delay:250ms"
          hx-target="#name-check"
          hx-swap="outerHTML"
          hx-sync="this:replace"
        />
        <p class="hint">Входит в адрес API: …/api/Название/auth. Без «/».</p>
        <NameCheck problem={e.name ?? null} />
      </div>
      <Field
        label="Описание (необязательно)"
        name="description"
        error={e.description}
        hint="Показывается в карточке товара в боте."
      >
        <textarea id="f-description" name="description" rows="3" maxlength="3000" safe>
          {props.values?.description ?? ""}
        </textarea>
      </Field>
      <button type="submit" class="primary">
        Создать продукт
      </button>
    </form>
  );
}

export function ProductsPage(props: { view: View; products: Product[]; stock: StockLine[]; form?: CreateFormProps }) {
  const { view } = props;
  const stockOf = new Map(props.stock.map((s) => [s.productId, s]));
  return (
    <Layout view={view} title="Продукты" tab="products">
      <h1>Продукты</h1>
      <div class="grid-side">
        <section class="card">
          <h2>Все продукты</h2>
          {props.products.length === 0 ? (
            <p class="empty">Продуктов пока нет — создайте первый.</p>
          ) : (
            <div class="table-wrap">
              <table class="table cards">
                <thead>
                  <tr>
                    <th>Продукт</th>
                    {DURATIONS.map((d) => (
                      <th class="num" safe>
                        {days(d)}
                      </th>
                    ))}
                    <th>Билд</th>
                  </tr>
                </thead>
                <tbody>
                  {props.products.map((p) => {
                    const line = stockOf.get(p.id);
                    return (
                      <tr class={p.archivedAt ? "archived" : ""}>
                        <td data-label="Продукт">
                          <a href={href(view, `/products/${p.id}`)} safe>
                            {p.name}
                          </a>
                          {p.archivedAt ? <Badge tone="muted">в архиве</Badge> : ""}
                        </td>
                        {DURATIONS.map((d) => {
                          const s = line?.durations.find((x) => x.days === d);
                          return (
                            <td
                              class={`num ${s && s.rub !== null && s.available === 0 ? "out" : ""}`}
                              data-label={days(d)}
                            >
                              <strong safe>{count(s?.available ?? 0)}</strong>
                              <span class="sub">{s?.rub != null ? rub(s.rub) : "—"}</span>
                            </td>
                          );
                        })}
                        <td data-label="Билд">{p.build ? size(p.build.size) : <Badge tone="warn">нет</Badge>}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
          <p class="hint">В ячейках — ключей в наличии и цена. Срок без цены или без ключей бот не показывает.</p>
        </section>
        <CreateProductForm view={view} {...props.form} />
      </div>
    </Layout>
  );
}

// ---- one product ------------------------------------------------------------------------------------------------

export function apiUrl(view: View, product: Pick<Product, "name">): string {
  return `${view.publicBase}/api/${encodeURIComponent(product.name)}/auth`;
}

type ProductProps = { view: View; product: Product };

/** The description: a preview of the saved text as the bot shows it, and the field (keeping `typed` if refused). */
export function DescriptionForm(props: ProductProps & { errors?: FieldErrors; saved?: boolean; typed?: string }) {
  const { view, product } = props;
  const e = props.errors ?? {};
  const url = href(view, `/products/${product.id}/description`);
  return (
    <form id="description" class="card stack" {...postTo(url, "this")} {...DISABLE_WHILE_SENDING}>
      <h2>Описание</h2>
      {props.saved ? <Notice kind="ok">Описание сохранено.</Notice> : ""}
      {product.description ? (
        <figure class="bot-preview">
          <figcaption class="hint">Так его увидит покупатель в карточке товара:</figcaption>
          <blockquote safe>{product.description}</blockquote>
        </figure>
      ) : (
        ""
      )}
      <CsrfField view={view} />
      <Field
        label="Текст карточки в боте"
        name="description"
        error={e.description}
        hint="Пусто — карточка без описания. До 3000 символов."
      >
        <textarea id="f-description" name="description" rows="5" maxlength="3000" safe>
          {props.typed ?? product.description}
        </textarea>
      </Field>
      <button type="submit" class="primary">
        Сохранить описание
      </button>
    </form>
  );
}

export function BuildSection(props: ProductProps & { errors?: FieldErrors; saved?: boolean }) {
  const { view, product } = props;
  const e = props.errors ?? {};
  const url = href(view, `/products/${product.id}/build`);
  const b = product.build;
  return (
    <section id="build" class="card stack">
      <h2>Билд (zip)</h2>
      {props.saved ? <Notice kind="ok">Билд загружен.</Notice> : ""}
      {b ? (
        <dl class="facts">
          <dt>Файл</dt>
          <dd safe>{b.name}</dd>
          <dt>Размер</dt>
          <dd safe>{size(b.size)}</dd>
          <dt>Загружен</dt>
          <dd safe>{when(b.uploadedAt)}</dd>
          <dt>SHA-256</dt>
          <dd class="mono hash" safe>
            {b.sha256}
          </dd>
        </dl>
      ) : (
        <Notice kind="warn">Билд не загружен: покупатель получит только ключ.</Notice>
      )}
      <form
        class="stack"
        {...postTo(url, "#build")}
        enctype="multipart/form-data"
        hx-encoding="multipart/form-data"
        {...DISABLE_WHILE_SENDING}
        hx-indicator="find .progress"
      >
        <CsrfField view={view} />
        <Field
          label={b ? "Заменить билд" : "Загрузить билд"}
          name="build"
          error={e.build}
          hint="Zip-архив до 50 МБ (столько Telegram разрешает боту отправить). Старый файл заменяется, когда новый полностью сохранён."
        >
          <input
            id="f-build"
            name="build"
            type="file"
            accept=".zip,application/zip"
            required
            data-max-bytes={String(MAX_BUILD_BYTES)}
            data-too-big="Файл больше 50 МБ: Telegram не отправит его покупателю"
          />
        </Field>
        <button type="submit" class="primary">
          Загрузить
        </button>
        <p class="progress htmx-indicator">Загрузка…</p>
      </form>
    </section>
  );
}

export function PricesForm(
  props: ProductProps & {
    prices: Partial<Record<DurationDays, number>>;
    /** Prices in Telegram Stars (docs/panel.md#telegram-stars). */
    starsPrices: Partial<Record<DurationDays, number>>;
    stock: StockLine | undefined;
    errors?: FieldErrors;
    values?: Record<string, string>;
    saved?: boolean;
  },
) {
  const { view, product } = props;
  const e = props.errors ?? {};
  const url = href(view, `/products/${product.id}/prices`);
  const typed = (name: string, saved: number | undefined) =>
    props.values?.[name] ?? (saved !== undefined ? String(saved) : "");
  // The wrapper reloads the form (stock hints included) whenever keys are generated, imported or deleted.
  return (
    <div id="prices" hx-get={url} hx-trigger="keys-changed from:body" hx-target="this" hx-swap="outerHTML">
      <form class="card stack" {...postTo(url, "#prices")} {...DISABLE_WHILE_SENDING}>
        <h2>Цены и наличие</h2>
        {props.saved ? <Notice kind="ok">Цены сохранены.</Notice> : ""}
        <CsrfField view={view} />
        <div class="prices">
          {DURATIONS.map((d) => {
            const s = props.stock?.durations.find((x) => x.days === d);
            const name = `price_${d}`;
            const starsName = `stars_${d}`;
            return (
              <div class={`field price ${e[name] || e[starsName] ? "has-error" : ""}`}>
                <label for={`f-${name}`} safe>
                  {days(d)}
                </label>
                <div class="input-suffix">
                  <input
                    id={`f-${name}`}
                    name={name}
                    inputmode="numeric"
                    maxlength="12"
                    value={typed(name, props.prices[d])}
                    placeholder="не продаётся"
                  />
                  <span>₽</span>
                </div>
                <div class="input-suffix">
                  <input
                    id={`f-${starsName}`}
                    name={starsName}
                    inputmode="numeric"
                    maxlength="9"
                    value={typed(starsName, props.starsPrices[d])}
                    placeholder="без звёзд"
                    aria-label={`${days(d)}: цена в звёздах Telegram`}
                  />
                  <span>⭐</span>
                </div>
                <p class="hint">
                  {escapeHtml(`в наличии ${count(s?.available ?? 0)}`)}
                  {s && s.reserved > 0 ? `, в резерве ${count(s.reserved)}` : ""}
                  {escapeHtml(`, продано ${count(s?.sold ?? 0)}`)}
                </p>
                {[e[name], e[starsName]].map((error) =>
                  error ? (
                    <p class="field-error" role="alert" safe>
                      {error}
                    </p>
                  ) : (
                    ""
                  ),
                )}
              </div>
            );
          })}
        </div>
        <p class="hint">
          Целые рубли, можно с пробелами: «1 490». Пустая цена — срок не продаётся. Бот показывает срок, только если
          есть и цена, и ключи. Цена в звёздах (⭐) необязательна: со включённой «Оплатой звёздами» в настройках бот
          предложит оплатить срок звёздами Telegram рядом с AnyPay.
        </p>
        <button type="submit" class="primary">
          Сохранить цены
        </button>
      </form>
    </div>
  );
}

/** Whether the bot offers the product, and if not, why: what the badge next to its name says. */
export function saleState(product: Product, stock: StockLine | undefined) {
  if (product.archivedAt) return { tone: "muted", text: `в архиве с ${when(product.archivedAt)}` } as const;
  const durations = stock?.durations ?? [];
  if (durations.some((d) => d.rub !== null && d.available > 0)) return { tone: "ok", text: "в продаже" } as const;
  if (!durations.some((d) => d.rub !== null)) return { tone: "warn", text: "не продаётся: нет цен" } as const;
  return { tone: "warn", text: "не продаётся: нет ключей по ценам" } as const;
}

/**
 * The product's state in the bot and the archive button. It re-reads itself when prices or keys change on the
 * page, so «в продаже» is never shown for a product the bot does not offer.
 */
export function ArchiveToggle(props: ProductProps & { stock: StockLine | undefined; error?: string }) {
  const { view, product } = props;
  const url = href(view, `/products/${product.id}/archive`);
  const archived = product.archivedAt !== null;
  const state = saleState(product, props.stock);
  return (
    <form
      id="archive"
      {...postTo(url, "this")}
      hx-confirm={archived ? undefined : "Убрать продукт из бота? Проданные ключи продолжат работать через API."}
    >
      <span
        hx-get={url}
        hx-trigger="keys-changed from:body, prices-changed from:body"
        hx-target="#archive"
        hx-swap="outerHTML"
      >
        <Badge tone={state.tone}>{escapeHtml(state.text)}</Badge>
      </span>{" "}
      <CsrfField view={view} />
      <input type="hidden" name="archived" value={archived ? "off" : "on"} />
      <button type="submit" class={archived ? "small" : "small secondary"}>
        {archived ? "Вернуть в бот" : "В архив"}
      </button>
      {props.error ? (
        <p class="field-error" role="alert" safe>
          {props.error}
        </p>
      ) : (
        ""
      )}
    </form>
  );
}

export type ProductPageProps = {
  view: View;
  product: Product;
  prices: Partial<Record<DurationDays, number>>;
  starsPrices: Partial<Record<DurationDays, number>>;
  stock: StockLine | undefined;
  keys: { query: KeysQuery; page: Page<KeyListItem>; counts: KeyCounts; rowError?: KeyRowError | undefined };
  /** The keys that sign the auth API's answers, newest first. */
  signingKeys: LicenceApiProps["keys"];
  /** A section re-rendered with errors after a plain (non-htmx) form post. */
  override?: {
    id: "description" | "build" | "prices" | "generate" | "import" | "issue" | "compensate" | "archive";
    html: string;
  };
};

export function ProductPage(props: ProductPageProps) {
  const { view, product } = props;
  const section = (id: NonNullable<ProductPageProps["override"]>["id"], fallback: JSX.Element) =>
    props.override?.id === id ? props.override.html : fallback;
  return (
    <Layout view={view} title={product.name} tab="products">
      <p class="crumbs">
        <a href={href(view, "/products")}>← Продукты</a>
      </p>
      <div class="title-row">
        <h1 safe>{product.name}</h1>
        {section("archive", <ArchiveToggle view={view} product={product} stock={props.stock} />)}
      </div>
      <LicenceApiSection url={apiUrl(view, product)} keys={props.signingKeys} />
      <div class="grid-2">
        {section(
          "prices",
          <PricesForm
            view={view}
            product={product}
            prices={props.prices}
            starsPrices={props.starsPrices}
            stock={props.stock}
          />,
        )}
        {section("description", <DescriptionForm view={view} product={product} />)}
        {section("generate", <GenerateForm view={view} product={product} />)}
        {section("import", <ImportForm view={view} product={product} />)}
        {section("issue", <IssueForm view={view} product={product} />)}
        {section("build", <BuildSection view={view} product={product} />)}
        {section("compensate", <CompensateForm view={view} product={product} />)}
      </div>
      <KeysSection view={view} productId={product.id} {...props.keys} />
    </Layout>
  );
}
