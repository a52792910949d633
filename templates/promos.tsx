import { escapeHtml } from "@kitajs/html";
import { DURATIONS } from "../src/lib/durations.ts";
import type { Product } from "../src/shop/products/products.ts";
import { discountLabel } from "../src/shop/promos/discount.ts";
import { daysList, type PromoCode, type PromoListItem } from "../src/shop/promos/promos.ts";
import { Badge, CsrfField, DISABLE_WHILE_SENDING, Field, Notice, postTo, Toggle } from "./components.tsx";
import { count, day, rub, stars } from "./format.ts";
import { Layout } from "./layout.tsx";
import { type FieldErrors, href, type View } from "./view.ts";

/** Промокоды: every code with its uses and revenue, creating one, and one code's page (edit, switch off). */

/** A code's form as typed: strings, so a refused form comes back exactly as it was sent. */
export type PromoFormValues = {
  code: string;
  kind: "percent" | "rub";
  amount: string;
  productId: string;
  days: string[];
  maxUses: string;
  maxUsesPerBuyer: string;
  validUntil: string;
  enabled: boolean;
};

export const NEW_PROMO: PromoFormValues = {
  code: "",
  kind: "percent",
  amount: "",
  productId: "",
  days: [],
  maxUses: "",
  maxUsesPerBuyer: "1",
  validUntil: "",
  enabled: true,
};

/** A saved code as its edit form shows it. */
export function promoValues(p: PromoCode): PromoFormValues {
  return {
    code: p.code,
    kind: p.discount.percent !== null ? "percent" : "rub",
    amount: String(p.discount.percent ?? p.discount.rub),
    productId: p.productId === null ? "" : String(p.productId),
    days: (p.days ?? []).map(String),
    maxUses: p.maxUses === null ? "" : String(p.maxUses),
    maxUsesPerBuyer: p.maxUsesPerBuyer === null ? "" : String(p.maxUsesPerBuyer),
    validUntil: p.validUntil ?? "",
    enabled: p.enabled,
  };
}

/** «Stalcraft · 7 и 30 дней», «Все товары». */
function scope(p: Pick<PromoCode, "productName" | "days">): string {
  const what = p.productName ?? "Все товары";
  return p.days === null ? what : `${what} · ${daysList(p.days)}`;
}

/** Whether the code works now, and if not, why: its badge. */
function state(p: PromoListItem): { tone: "ok" | "muted" | "warn"; text: string } {
  if (!p.enabled) return { tone: "muted", text: "выключен" };
  if (p.expired) return { tone: "muted", text: "срок истёк" };
  if (p.maxUses !== null && p.used >= p.maxUses) return { tone: "warn", text: "израсходован" };
  return { tone: "ok", text: "действует" };
}

function uses(p: PromoListItem): string {
  return p.maxUses === null ? count(p.used) : `${count(p.used)} из ${count(p.maxUses)}`;
}

function revenue(p: Pick<PromoListItem, "revenueRub" | "revenueStars">): string {
  return p.revenueStars > 0 ? `${rub(p.revenueRub)} + ${stars(p.revenueStars)}` : rub(p.revenueRub);
}

export type PromoFormProps = {
  view: View;
  products: Product[];
  values: PromoFormValues;
  errors?: FieldErrors;
  /** The code being edited (its code is fixed); none for a new one. */
  promo?: PromoCode;
  saved?: boolean;
};

/** Create and edit share the form: the code is typed once, everything else can change later. */
export function PromoForm(props: PromoFormProps) {
  const { view, values, promo } = props;
  const e = props.errors ?? {};
  const action = href(view, promo ? `/promos/${promo.id}` : "/promos");
  const invalid = (name: string) => (e[name] ? { "aria-invalid": "true", "aria-describedby": `e-${name}` } : {});
  return (
    <form id="promo-form" class="card stack" {...postTo(action, "this")} {...DISABLE_WHILE_SENDING}>
      <h2>{promo ? "Условия" : "Новый промокод"}</h2>
      {props.saved ? <Notice kind="ok">Промокод сохранён.</Notice> : ""}
      {e._ ? (
        <Notice kind="error">
          <span safe>{e._}</span>
        </Notice>
      ) : (
        ""
      )}
      <CsrfField view={view} />
      {promo ? (
        ""
      ) : (
        <Field
          label="Код"
          name="code"
          error={e.code}
          hint="3–32 символа: латинские буквы, цифры, «_» и «-». Покупатель вводит его в любом регистре."
        >
          <input
            id="f-code"
            name="code"
            required
            maxlength="32"
            autocomplete="off"
            autocapitalize="characters"
            spellcheck="false"
            class="mono"
            placeholder="например, SPRING25"
            value={values.code}
            {...invalid("code")}
          />
        </Field>
      )}
      <Field
        label="Скидка"
        name="amount"
        error={e.amount}
        hint="Скидка в рублях больше цены делает покупку бесплатной — ограничьте сроки, если это не нужно."
      >
        <div class="input-suffix">
          <input
            id="f-amount"
            name="amount"
            required
            inputmode="numeric"
            maxlength="12"
            value={values.amount}
            {...invalid("amount")}
          />
          <select name="kind" aria-label="Скидка в процентах или в рублях">
            <option value="percent" selected={values.kind === "percent"}>
              %
            </option>
            <option value="rub" selected={values.kind === "rub"}>
              ₽
            </option>
          </select>
        </div>
      </Field>
      <Field label="Товар" name="productId" error={e.productId}>
        <select id="f-productId" name="productId" {...invalid("productId")}>
          <option value="" selected={values.productId === ""}>
            Все товары
          </option>
          {props.products.map((p) => (
            <option value={String(p.id)} selected={values.productId === String(p.id)} safe>
              {p.archivedAt ? `${p.name} (в архиве)` : p.name}
            </option>
          ))}
        </select>
      </Field>
      <fieldset class={`field choices ${e.days ? "has-error" : ""}`}>
        <legend>Сроки</legend>
        <div class="choice-row">
          {DURATIONS.map((d) => (
            <label class="choice">
              <input type="checkbox" name="days" value={String(d)} checked={values.days.includes(String(d))} />
              <span safe>{`${d} дн.`}</span>
            </label>
          ))}
        </div>
        {e.days ? (
          <p class="field-error" id="e-days" role="alert" safe>
            {e.days}
          </p>
        ) : (
          <p class="hint">Ничего не отмечено — любой срок.</p>
        )}
      </fieldset>
      <div class="row">
        <Field label="Всего использований" name="maxUses" error={e.maxUses} hint="Пусто — без ограничения.">
          <input
            id="f-maxUses"
            name="maxUses"
            inputmode="numeric"
            maxlength="8"
            value={values.maxUses}
            {...invalid("maxUses")}
          />
        </Field>
        <Field
          label="На одного покупателя"
          name="maxUsesPerBuyer"
          error={e.maxUsesPerBuyer}
          hint="Пусто — без ограничения."
        >
          <input
            id="f-maxUsesPerBuyer"
            name="maxUsesPerBuyer"
            inputmode="numeric"
            maxlength="8"
            value={values.maxUsesPerBuyer}
            {...invalid("maxUsesPerBuyer")}
          />
        </Field>
      </div>
      <Field
        label="Действует до (включительно)"
        name="validUntil"
        error={e.validUntil}
        hint="По московскому времени. Пусто — бессрочно."
      >
        <input id="f-validUntil" name="validUntil" type="date" value={values.validUntil} {...invalid("validUntil")} />
      </Field>
      {promo ? (
        ""
      ) : (
        <label class="choice">
          <input type="checkbox" name="enabled" value="on" checked={values.enabled} />
          <span>Включить сразу</span>
        </label>
      )}
      <p class="hint">
        Использование засчитывается при оплате; пока заказ ждёт оплаты, он держит своё использование. Уже оформленные
        заказы сохраняют свою цену, если условия изменятся.
      </p>
      <button type="submit" class="primary">
        {promo ? "Сохранить условия" : "Создать промокод"}
      </button>
    </form>
  );
}

/** The switch: a code switched off is refused to new buyers; orders that already hold it can still be paid. */
export function PromoSwitch(props: { view: View; promo: PromoCode; back: "list" | "page" }) {
  const { view, promo } = props;
  return (
    <div class="promo-switch">
      <Toggle
        view={view}
        action={href(view, `/promos/${promo.id}/enabled`, { back: props.back })}
        name="enabled"
        on={promo.enabled}
        onLabel="Включён"
        offLabel="Выключен"
        turnOn="Включить"
        turnOff="Выключить"
        target="#main"
        confirm={
          promo.enabled ? `Выключить промокод ${promo.code}? Новые покупатели не смогут его применить.` : undefined
        }
      />
    </div>
  );
}

export function PromosTable(props: { view: View; promos: PromoListItem[] }) {
  const { view } = props;
  if (props.promos.length === 0) return <p class="empty">Промокодов пока нет — создайте первый.</p>;
  return (
    <div class="table-wrap">
      <table class="table cards" id="promos">
        <thead>
          <tr>
            <th>Код</th>
            <th>Скидка</th>
            <th>На что</th>
            <th class="num">Использован</th>
            <th class="num">Выручка</th>
            <th>До</th>
            <th>Статус</th>
          </tr>
        </thead>
        <tbody>
          {props.promos.map((p) => {
            const s = state(p);
            return (
              <tr class={s.tone === "ok" ? "" : "archived"}>
                <td data-label="Код">
                  <a class="mono promo-code" href={href(view, `/promos/${p.id}`)} safe>
                    {p.code}
                  </a>
                </td>
                <td data-label="Скидка" class="promo-discount" safe>
                  {discountLabel(p.discount)}
                </td>
                <td data-label="На что" safe>
                  {scope(p)}
                </td>
                <td data-label="Использован" class="num">
                  {escapeHtml(uses(p))}
                  {p.held > 0 ? <span class="sub" safe>{`ещё ${count(p.held)} ждут оплаты`}</span> : ""}
                  {p.maxUsesPerBuyer !== null ? (
                    <span class="sub" safe>{`не больше ${count(p.maxUsesPerBuyer)} на покупателя`}</span>
                  ) : (
                    ""
                  )}
                </td>
                <td data-label="Выручка" class="num" safe>
                  {revenue(p)}
                </td>
                <td data-label="До">{p.validUntil ? day(new Date(`${p.validUntil}T12:00:00+03:00`)) : "бессрочно"}</td>
                <td data-label="Статус">
                  <Badge tone={s.tone}>{escapeHtml(s.text)}</Badge>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export function PromosPage(props: {
  view: View;
  promos: PromoListItem[];
  form: Omit<PromoFormProps, "view">;
  created?: string | undefined;
}) {
  const { view } = props;
  return (
    <Layout view={view} title="Промокоды" tab="promos">
      <h1>Промокоды</h1>
      <p class="lead">
        Покупатель вводит код на шаге подтверждения в боте. Выручка — то, что покупатели действительно заплатили.
      </p>
      {props.created ? (
        <Notice kind="ok">
          <span safe>{`Промокод ${props.created} создан.`}</span>
        </Notice>
      ) : (
        ""
      )}
      <div class="grid-side">
        <section class="card">
          <h2>Все промокоды</h2>
          <PromosTable view={view} promos={props.promos} />
        </section>
        <PromoForm view={view} {...props.form} />
      </div>
    </Layout>
  );
}

export function PromoPage(props: {
  view: View;
  promo: PromoListItem;
  form: Omit<PromoFormProps, "view" | "promo">;
  switched?: string | undefined;
}) {
  const { view, promo } = props;
  const s = state(promo);
  return (
    <Layout view={view} title={`Промокод ${promo.code}`} tab="promos">
      <p class="crumbs">
        <a href={href(view, "/promos")}>← Промокоды</a>
      </p>
      <div class="title-row">
        <h1 safe>{`Промокод ${promo.code}`}</h1>
        <Badge tone={s.tone}>{escapeHtml(s.text)}</Badge>
      </div>
      {props.switched ? (
        <Notice kind="ok">
          <span safe>{props.switched}</span>
        </Notice>
      ) : (
        ""
      )}
      <section class="stats" aria-label="Итоги">
        <div class="stat">
          <p class="stat-label">Использован</p>
          <p class="stat-value" safe>
            {uses(promo)}
          </p>
          <p class="stat-sub">{promo.held > 0 ? `ещё ${count(promo.held)} ждут оплаты` : "оплаченных заказов"}</p>
        </div>
        <div class="stat">
          <p class="stat-label">Выручка</p>
          <p class="stat-value" safe>
            {rub(promo.revenueRub)}
          </p>
          <p class="stat-sub">{promo.revenueStars > 0 ? `и ${stars(promo.revenueStars)}` : "заплатили покупатели"}</p>
        </div>
        <div class="stat">
          <p class="stat-label">Скидка дана</p>
          <p class="stat-value" safe>
            {rub(promo.discountRub)}
          </p>
          <p class="stat-sub" safe>
            {`${discountLabel(promo.discount)} · ${scope(promo)}`}
          </p>
        </div>
      </section>
      <section class="card switch-row">
        <div>
          <p class="switch-title">Промокод</p>
          <p class="hint">Выключенный код бот не принимает; заказы, которые уже его держат, можно оплатить.</p>
        </div>
        <PromoSwitch view={view} promo={promo} back="page" />
      </section>
      <PromoForm view={view} promo={promo} {...props.form} />
    </Layout>
  );
}
