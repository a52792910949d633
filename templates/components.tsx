import type { Children } from "@kitajs/html";
import type { DeliveryStatus } from "../src/shop/orders/deliveries.ts";
import type { OrderStatus, PaidBy } from "../src/shop/orders/orders.ts";
import { days } from "./format.ts";
import { href, type View } from "./view.ts";

/** Small pieces every tab uses: form fields with their error, the CSRF field, pagers, badges, notices. */

/**
 * htmx 4's hx-disable (buttons disabled while the form is being sent, so a double click posts once). Spread in,
 * because the bundled attribute types still describe htmx 2, where hx-disable was a boolean.
 */
export const DISABLE_WHILE_SENDING: Record<string, string> = { "hx-disable": "find button" };

/**
 * A panel form's own attributes, spread into <form>: htmx posts it and swaps `target` with the answer, a browser
 * without JavaScript posts it plainly to the same URL (the panel answers both), so the two never point apart.
 */
export function postTo(action: string, target: string) {
  return { method: "post", action, "hx-post": action, "hx-target": target, "hx-swap": "outerHTML" };
}

export function CsrfField({ view }: { view: View }) {
  return <input type="hidden" name="_csrf" value={view.csrf} />;
}

/** A labelled control with its hint and, after a failed submit, the message right under it. */
export function Field(props: {
  label: string;
  name: string;
  error?: string | undefined;
  hint?: string | undefined;
  children: Children;
  class?: string;
}) {
  return (
    <div class={["field", props.error ? "has-error" : "", props.class ?? ""].filter(Boolean).join(" ")}>
      <label for={`f-${props.name}`} safe>
        {props.label}
      </label>
      {props.children}
      {props.hint && !props.error ? (
        <p class="hint" safe>
          {props.hint}
        </p>
      ) : (
        ""
      )}
      {props.error ? (
        <p class="field-error" id={`e-${props.name}`} role="alert" safe>
          {props.error}
        </p>
      ) : (
        ""
      )}
    </div>
  );
}

export function Notice(props: { kind: "ok" | "warn" | "error" | "info"; children: Children; id?: string }) {
  return (
    <div class={`notice notice-${props.kind}`} role={props.kind === "error" ? "alert" : "status"} id={props.id}>
      {props.children}
    </div>
  );
}

/** Links to the neighbouring pages of a keyset list; htmx swaps just the list, plain links load the page. */
export function Pager(props: {
  prev: string | null;
  next: string | null;
  hrefFor: (cursor: { after?: string; before?: string }) => string;
  target: string;
}) {
  if (!props.prev && !props.next) return "";
  return (
    <nav class="pager" aria-label="Страницы">
      {props.prev ? (
        <a
          href={props.hrefFor({ before: props.prev })}
          hx-get={props.hrefFor({ before: props.prev })}
          hx-target={props.target}
          hx-swap="outerHTML"
          hx-push-url="true"
        >
          ← Назад
        </a>
      ) : (
        <span />
      )}
      {props.next ? (
        <a
          href={props.hrefFor({ after: props.next })}
          hx-get={props.hrefFor({ after: props.next })}
          hx-target={props.target}
          hx-swap="outerHTML"
          hx-push-url="true"
        >
          Дальше →
        </a>
      ) : (
        <span />
      )}
    </nav>
  );
}

/** An order's number, linking to its page. */
export function OrderLink({ view, id }: { view: View; id: number }) {
  return <a href={href(view, `/orders/${id}`)} safe>{`#${id}`}</a>;
}

export const ORDER_STATUS_LABELS: Record<OrderStatus, string> = {
  pending: "Ожидает оплаты",
  paid: "Оплачен",
  delivered: "Выдан",
  // Only an admin closing a paid_no_stock order (refunded, or settled by hand) sets it.
  failed: "Закрыт без ключа",
  expired: "Истёк",
  paid_no_stock: "Оплачен, нет ключей",
};

/** Who paid an order, as the owner reads it. */
export const PAID_BY_LABELS: Record<PaidBy, string> = {
  anypay: "AnyPay",
  telegram_stars: "Telegram Stars",
  promo: "промокод (бесплатно)",
  test: "тестовая оплата",
};

export const DELIVERY_LABELS: Record<DeliveryStatus, string> = {
  pending: "В очереди на отправку",
  sent: "Доставлен",
  blocked: "Не доставлен: покупатель заблокировал бота",
  failed: "Не доставлен: Telegram не принял сообщение",
};

const ORDER_STATUS_TONE: Record<OrderStatus, string> = {
  pending: "muted",
  paid: "info",
  delivered: "ok",
  failed: "muted",
  expired: "muted",
  paid_no_stock: "bad",
};

export function OrderStatusBadge({ status, test }: { status: OrderStatus; test?: boolean }) {
  return (
    <span class="badges">
      <span class={`badge badge-${ORDER_STATUS_TONE[status]}`} safe>
        {ORDER_STATUS_LABELS[status]}
      </span>
      {test ? <span class="badge badge-warn">тест</span> : ""}
    </span>
  );
}

export function Badge(props: { tone: "ok" | "info" | "warn" | "bad" | "muted"; children: Children }) {
  return <span class={`badge badge-${props.tone}`}>{props.children}</span>;
}

/** An on/off switch as one button that posts the opposite state: works with and without JavaScript. */
export function Toggle(props: {
  view: View;
  action: string;
  name: string;
  on: boolean;
  onLabel: string;
  offLabel: string;
  turnOn: string;
  turnOff: string;
  target: string;
  confirm?: string | undefined;
}) {
  return (
    <form {...postTo(props.action, props.target)} hx-confirm={props.confirm}>
      <CsrfField view={props.view} />
      <input type="hidden" name={props.name} value={props.on ? "off" : "on"} />
      <span class={`switch-state ${props.on ? "is-on" : "is-off"}`} safe>
        {props.on ? props.onLabel : props.offLabel}
      </span>
      <button type="submit" class={props.on ? "secondary" : "primary"} safe>
        {props.on ? props.turnOff : props.turnOn}
      </button>
    </form>
  );
}

/** A product with the duration bought, as orders and keys show it; linked to the product where the owner manages it. */
export function ProductDuration(props: {
  view: View;
  productId: number;
  productName: string;
  days: number;
  link: boolean;
}) {
  return (
    <>
      {props.link ? (
        <a href={href(props.view, `/products/${props.productId}`)} safe>
          {props.productName}
        </a>
      ) : (
        <span safe>{props.productName}</span>
      )}{" "}
      <span class="sub" safe>
        {days(props.days)}
      </span>
    </>
  );
}
