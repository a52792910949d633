import { Composer } from "gramio";
import { isDuration } from "../../lib/durations.ts";
import { log } from "../../lib/log.ts";
import type { PaymentOption } from "../../payments/provider.ts";
import type { Order } from "../../shop/orders/orders.ts";
import {
  ADMIN_ONLY,
  TEST_ONLY_PAYMENT,
  TEST_PAY_ACCEPTED,
  TEST_PAY_OFF,
  testPaidText,
} from "../../shop/texts/admins.ts";
import {
  confirmText,
  PAYMENTS_NOT_CONFIGURED,
  PRICE_CHANGED,
  paymentText,
  STALE_BUTTON,
  STALE_DURATION,
  STALE_PRODUCT,
} from "../../shop/texts/buyers.ts";
import { backToCatalogue, confirmKeyboard, pattern, paymentKeyboard } from "../keyboards.ts";
import { answer, type BotApi, type BotDeps, type Place, placeOf, type Screen, show } from "../screen.ts";
import * as views from "../views.ts";

/**
 * The storefront: catalogue → product card → confirmation → payment link. Every screen after the first edits the
 * message in place. Every button is checked against the live catalogue; a stale one gets a short notice and the
 * fresh card instead of an error. What a purchase costs, whether it can be paid and how is the checkout's to say.
 */
export function storefront(deps: BotDeps) {
  const { shop, checkout } = deps;
  const catalogueScreen = (userId: number) => views.catalogueScreen(deps, userId);
  const freshCard = (api: BotApi, place: Place, userId: number, productId: number, soldOut?: number) =>
    views.freshCard(deps, api, place, userId, productId, soldOut);
  const { productScreen } = views;

  function paymentScreen(order: Order, options: PaymentOption[]): Screen {
    // The way to pay went away between the check and the link: the buyer gets the same honest answer.
    if (options.length === 0) return { text: PAYMENTS_NOT_CONFIGURED, keyboard: backToCatalogue() };
    const testOnly = options.every((o) => o.provider === "test");
    return {
      text: testOnly ? `${paymentText(order)}\n\n${TEST_ONLY_PAYMENT}` : paymentText(order),
      keyboard: paymentKeyboard(options),
    };
  }

  return new Composer({ name: "storefront" })
    .command(["start", "catalog"], async (ctx) => {
      await show(ctx.bot.api, { chatId: ctx.payload.chat.id }, await catalogueScreen(ctx.payload.chat.id));
    })
    .callbackQuery(pattern.catalogue, async (ctx) => {
      await answer(ctx.bot.api, ctx.payload.id);
      await show(ctx.bot.api, placeOf(ctx.payload), await catalogueScreen(ctx.payload.from.id));
    })
    .callbackQuery(pattern.product, async (ctx) => {
      const api = ctx.bot.api;
      const product = await shop.catalogue.product(Number(ctx.queryData[1]));
      if (!product) {
        await answer(api, ctx.payload.id, STALE_PRODUCT);
        await show(api, placeOf(ctx.payload), await catalogueScreen(ctx.payload.from.id));
        return;
      }
      await answer(api, ctx.payload.id);
      await show(api, placeOf(ctx.payload), productScreen(product));
    })
    .callbackQuery(pattern.offer, async (ctx) => {
      const api = ctx.bot.api;
      const [productId, days, rub] = [Number(ctx.queryData[1]), Number(ctx.queryData[2]), Number(ctx.queryData[3])];
      const place = placeOf(ctx.payload);
      const quote = await checkout.quote(productId, days, rub);
      if (quote.kind === "gone") {
        await answer(api, ctx.payload.id, quote.product ? STALE_DURATION(days) : STALE_PRODUCT);
        await freshCard(api, place, ctx.payload.from.id, productId);
        return;
      }
      if (quote.kind === "price_changed") {
        await answer(api, ctx.payload.id, PRICE_CHANGED(quote.rub));
        await show(api, place, productScreen(quote.product));
        return;
      }
      await answer(api, ctx.payload.id);
      await show(api, place, {
        text: confirmText(quote.product.name, days, quote.offer.rub),
        keyboard: confirmKeyboard(quote.product.id, days, quote.offer.rub),
      });
    })
    .callbackQuery(pattern.confirm, async (ctx) => {
      const api = ctx.bot.api;
      const [productId, days, rub] = [Number(ctx.queryData[1]), Number(ctx.queryData[2]), Number(ctx.queryData[3])];
      const userId = ctx.payload.from.id;
      const place = placeOf(ctx.payload);
      if (!isDuration(days)) {
        await answer(api, ctx.payload.id, STALE_BUTTON);
        await freshCard(api, place, userId, productId);
        return;
      }
      const result = await checkout.place({ userId, productId, days, seenRub: rub });
      switch (result.kind) {
        case "placed":
          await answer(api, ctx.payload.id);
          await show(api, place, paymentScreen(result.order, result.options));
          return;
        case "no_way_to_pay":
          await answer(api, ctx.payload.id);
          await show(api, place, { text: PAYMENTS_NOT_CONFIGURED, keyboard: backToCatalogue() });
          return;
        case "price_changed":
          await answer(api, ctx.payload.id, PRICE_CHANGED(result.rub));
          await freshCard(api, place, userId, productId);
          return;
        case "out_of_stock":
          await answer(api, ctx.payload.id, STALE_DURATION(days));
          await freshCard(api, place, userId, productId, days);
          return;
        case "unavailable":
          await answer(api, ctx.payload.id, STALE_PRODUCT);
          await freshCard(api, place, userId, productId);
          return;
      }
    })
    .callbackQuery(pattern.payTest, async (ctx) => {
      const api = ctx.bot.api;
      const userId = ctx.payload.from.id;
      const orderId = Number(ctx.queryData[1]);
      const refusal = await checkout.testPaymentRefusal(userId, orderId);
      if (refusal === "not_admin" || refusal === "off") {
        await answer(api, ctx.payload.id, refusal === "off" ? TEST_PAY_OFF : ADMIN_ONLY, { alert: true });
        return;
      }
      if (refusal === "not_theirs") {
        await answer(api, ctx.payload.id, STALE_BUTTON);
        return;
      }
      const result = await checkout.payTest(orderId, userId);
      if (!result.ok) {
        await answer(api, ctx.payload.id, result.reason, { alert: true });
        return;
      }
      log.info("test payment made from the bot", { orderId, adminId: userId });
      await answer(api, ctx.payload.id, TEST_PAY_ACCEPTED);
      await show(api, placeOf(ctx.payload), { text: testPaidText(orderId), keyboard: backToCatalogue() });
    });
}
