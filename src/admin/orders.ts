import { DELIVERY_LABELS, ORDER_STATUS_LABELS } from "../../templates/components.tsx";
import { when, wholeStars } from "../../templates/format.ts";
import { OrdersBadge } from "../../templates/layout.tsx";
import { canRetry, OrderPage, OrderView, type OrderViewProps } from "../../templates/order.tsx";
import { OrdersList, OrdersPage } from "../../templates/orders.tsx";
import type { View } from "../../templates/view.ts";
import { log } from "../lib/log.ts";
import type { Checkout } from "../payments/checkout.ts";
import { notFound } from "../shop/errors.ts";
import { isOrderStatus } from "../shop/orders/lists.ts";
import { closingNote, MAX_CLOSING_NOTE } from "../shop/orders/waiting.ts";
import type { PanelContext } from "./context.ts";
import type { PanelRoutes } from "./guard.ts";
import { field, html, idParam, isPartial, queryText, render } from "./respond.ts";

/** Telegram's refusal of refundStarPayment, in the owner's words and with what to do: the whole notice. */
function telegramRefusal(reason: string): string {
  const refused = (why: string) => `Telegram не вернул звёзды: ${why} В магазине ничего не изменилось.`;
  if (/CHARGE_NOT_FOUND/i.test(reason)) {
    return refused(
      "платёж не найден — его принял другой бот? Проверьте, что токен в настройках — того бота, которому платили.",
    );
  }
  if (/BALANCE|NOT_ENOUGH|insufficient/i.test(reason)) {
    return refused("на балансе бота не хватает звёзд. Пополните баланс бота и попробуйте снова.");
  }
  if (/token is not set/i.test(reason)) return refused("токен бота не задан. Задайте его в «Основных настройках».");
  if (/^(401|404)\b/.test(reason))
    return refused("Telegram не принял токен бота. Проверьте токен в «Основных настройках».");
  if (/timed? ?out|abort/i.test(reason)) {
    return "Telegram не ответил вовремя, и возврат не отмечен. Нажмите «Вернуть звёзды» ещё раз: если звёзды уже вернулись, магазин сверится с Telegram и отметит возврат.";
  }
  return refused(`${reason.slice(0, 200).replace(/\.$/, "")}. Попробуйте ещё раз через минуту.`);
}

/**
 * Заказы: every order, newest first, by status, with what needs the owner on top; one order's page with its key,
 * delivery, payments and log; and the two things the owner settles there: sending a stopped delivery again, and
 * closing a paid order that got no key after refunding it, and giving back Stars that bought nothing.
 */
export function ordersRoutes(routes: PanelRoutes, panel: PanelContext, checkout: Checkout) {
  const { shop } = panel;

  /** Everything the order page shows, read fresh (after an action too, so the page shows its effect). */
  async function orderProps(view: View, idText: string): Promise<OrderViewProps> {
    const id = idParam(idText);
    const order = id === null ? null : await shop.orders.byId(id);
    if (!order) throw notFound("Такого заказа нет.");
    const [buyer, orderKey, delivery, payments, events] = await Promise.all([
      shop.users.byId(order.userId),
      shop.keys.itemOfOrder(order.id),
      shop.deliveries.byOrder(order.id),
      shop.orders.paymentsOf(order.id),
      shop.users.orderEvents(order.userId, order.id),
    ]);
    return { view, order, buyer, orderKey, delivery, payments, events };
  }

  /**
   * The fragment for htmx swapping #order, the whole page for anything else (a first visit, a boosted link, a
   * plain form post); the notice shows on either.
   */
  function answer(request: Request, props: OrderViewProps, status = 200): Promise<Response> {
    return render(isPartial(request) ? OrderView(props) : OrderPage(props), status);
  }

  /**
   * The answer to an action that changed the order: as `answer`, with the tab's badge counted again (the guard
   * counted before the action) — in the page, or swapped out of band next to the fragment.
   */
  async function answerChanged(request: Request, props: OrderViewProps): Promise<Response> {
    const count = await shop.orders.needingOwner();
    if (!isPartial(request)) return render(OrderPage({ ...props, view: { ...props.view, needsOwner: count } }));
    return html(`${await OrderView(props)}${await OrdersBadge({ count, oob: true })}`);
  }

  return routes
    .get("/orders", async ({ request, query, panel: p }) => {
      const statusText = queryText(query, "status");
      const q = {
        status: isOrderStatus(statusText) ? statusText : undefined,
        q: (queryText(query, "q") ?? "").trim().slice(0, 16),
      };
      const page = await shop.orders.list({
        ...q,
        after: queryText(query, "after"),
        before: queryText(query, "before"),
      });
      if (isPartial(request)) return render(OrdersList({ view: p.view, query: q, page }));
      const [counts, attention] = await Promise.all([shop.orders.counts(), shop.orders.attention()]);
      return render(OrdersPage({ view: p.view, query: q, page, counts, attention }));
    })
    .get("/orders/:id", async ({ request, params, panel: p }) => answer(request, await orderProps(p.view, params.id)))
    .post("/orders/:id/retry", async ({ request, params, panel: p }) => {
      const before = await orderProps(p.view, params.id);
      const { order, delivery } = before;
      if (!canRetry(delivery)) {
        const now = delivery ? `сейчас: «${DELIVERY_LABELS[delivery.status]}»` : "у заказа нет доставки";
        const text = `Отправлять ещё раз нечего: ${now}.`;
        return answer(request, { ...before, notice: { kind: "error", text } }, 409);
      }
      // The delivery may have been requeued between the read and now (the buyer wrote to the bot): retry says.
      const requeued = await shop.deliveries.retry(order.id);
      const after = await orderProps(p.view, params.id);
      if (!requeued) {
        const text = "Доставка уже снова в очереди — отправлять ещё раз не нужно.";
        return answer(request, { ...after, notice: { kind: "error", text } }, 409);
      }
      log.info("panel: delivery retried", { orderId: order.id, login: p.account.login });
      const text =
        "Доставка снова в очереди: бот отправит ключ в течение нескольких секунд. Обновите страницу, чтобы увидеть итог.";
      return answerChanged(request, { ...after, notice: { kind: "ok", text } });
    })
    .post("/orders/:id/refund-stars", async ({ request, params, body, panel: p }) => {
      const before = await orderProps(p.view, params.id);
      const transactionId = field(body, "transaction").trim().slice(0, 128);
      const result = await checkout.stars.refund(before.order.id, transactionId, p.account.login);
      const after = await orderProps(p.view, params.id);
      const refused = (status: number, text: string) =>
        answer(request, { ...after, notice: { kind: "error", text } }, status);
      switch (result.kind) {
        case "refunded": {
          log.info("panel: stars refunded", { orderId: before.order.id, transactionId, login: p.account.login });
          const closed = before.order.status === "paid_no_stock" && result.order.status === "failed";
          const text = `Звёзды возвращены покупателю: ${wholeStars(result.payment.amount)} ⭐.${closed ? " Заказ закрыт: ключ ему больше не уйдёт." : ""}`;
          return answerChanged(request, { ...after, notice: { kind: "ok", text } });
        }
        case "already":
          return refused(
            409,
            `Эти звёзды уже возвращены${result.payment.refundedAt ? ` ${when(result.payment.refundedAt)}` : ""}${result.payment.refundedBy ? ` (${result.payment.refundedBy})` : ""}.`,
          );
        case "not_found":
          return refused(404, "У этого заказа нет такого платежа звёздами. Обновите страницу.");
        case "has_key":
          return refused(
            409,
            "Вернуть звёзды можно только за оплату, которая не дала ключа: этот заказ получил ключ по этой оплате.",
          );
        case "telegram_refused":
          return refused(502, telegramRefusal(result.reason));
      }
    })
    .post("/orders/:id/close", async ({ request, params, body, panel: p }) => {
      const before = await orderProps(p.view, params.id);
      const { order } = before;
      const note = closingNote(field(body, "note"));
      if (order.status !== "paid_no_stock") {
        const text = `Закрыть можно только оплаченный заказ без ключа, а этот — «${ORDER_STATUS_LABELS[order.status]}».`;
        return answer(request, { ...before, notice: { kind: "error", text } }, 409);
      }
      const noteError =
        note === ""
          ? "Напишите, что сделано: например, «деньги возвращены»"
          : note.length > MAX_CLOSING_NOTE
            ? `Не длиннее ${MAX_CLOSING_NOTE} символов`
            : null;
      if (noteError) return answer(request, { ...before, close: { note, errors: { note: noteError } } }, 422);
      const closed = await shop.orders.closeUnfulfilled(order.id, note);
      const after = await orderProps(p.view, params.id);
      if (!closed) {
        // A key arrived (or another admin closed it) between the read and the update.
        const text = `Заказ не закрыт: он уже не ждёт ключа (сейчас — «${ORDER_STATUS_LABELS[after.order.status]}»).`;
        return answer(request, { ...after, notice: { kind: "error", text } }, 409);
      }
      log.info("panel: paid_no_stock order closed", { orderId: order.id, login: p.account.login });
      return answerChanged(request, {
        ...after,
        notice: { kind: "ok", text: "Заказ закрыт: новые ключи этому покупателю не уйдут." },
      });
    });
}
