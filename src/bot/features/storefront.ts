import { Composer } from "gramio";
import { isDuration } from "../../lib/durations.ts";
import { log } from "../../lib/log.ts";
import type { Order } from "../../shop/orders/orders.ts";
import {
  ADMIN_ONLY,
  alertTexts,
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

/** Payment alerts to admins at most this often, however many buyers hit the problem. */
const ALERT_EVERY_MS = 10 * 60_000;

/**
 * The storefront: catalogue → product card → confirmation → payment link. Every screen after the first edits the
 * message in place. Every button is checked against the live catalogue; a stale one gets a short notice and the
 * fresh card instead of an error.
 */
export function storefront(deps: BotDeps) {
  const { shop, payments } = deps;
  const catalogueScreen = (userId: number) => views.catalogueScreen(deps, userId);
  const freshCard = (api: BotApi, place: Place, userId: number, productId: number, soldOut?: number) =>
    views.freshCard(deps, api, place, userId, productId, soldOut);
  const { productScreen } = views;

  async function alertAdmins(api: BotApi, text: string): Promise<void> {
    if (!(await shop.limits.firstIn("bot:alert:payments", ALERT_EVERY_MS))) return;
    for (const admin of await shop.admins.list()) {
      await api.sendMessage({ chat_id: admin.telegramId, text }).catch((error: unknown) => {
        log.warn("admin alert not delivered", { adminId: admin.telegramId, error });
      });
    }
  }

  async function paymentScreen(order: Order, testOrder: boolean): Promise<Screen> {
    const url = await payments.checkoutUrl(order);
    // AnyPay settings removed between the check and the link: the buyer gets the same honest answer.
    if (!url && !testOrder) return { text: PAYMENTS_NOT_CONFIGURED, keyboard: backToCatalogue() };
    return {
      text: url ? paymentText(order) : `${paymentText(order)}\n\n${TEST_ONLY_PAYMENT}`,
      keyboard: paymentKeyboard({ url, rub: order.amountRub, testOrderId: testOrder ? order.id : null }),
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
      const product = await shop.catalogue.product(productId);
      const offer = product?.offers.find((o) => o.days === days);
      if (!product || !offer) {
        await answer(api, ctx.payload.id, product ? STALE_DURATION(days) : STALE_PRODUCT);
        await freshCard(api, place, ctx.payload.from.id, productId);
        return;
      }
      if (offer.rub !== rub) {
        await answer(api, ctx.payload.id, PRICE_CHANGED(offer.rub));
        await show(api, place, productScreen(product));
        return;
      }
      await answer(api, ctx.payload.id);
      await show(api, place, {
        text: confirmText(product.name, days, offer.rub),
        keyboard: confirmKeyboard(product.id, days, offer.rub),
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
      const [settings, admin] = await Promise.all([shop.settings.get(), shop.admins.isAdmin(userId)]);
      const testPayments = admin && settings.testPayments;
      const anypayReady = Boolean(settings.anypayMerchantId && settings.anypaySecretKey);
      if (!anypayReady && !testPayments) {
        // No order is placed: holding a key for a payment that cannot happen would only hide it from others.
        log.warn("purchase refused: AnyPay is not configured", { userId, productId, days });
        await answer(api, ctx.payload.id);
        await show(api, place, { text: PAYMENTS_NOT_CONFIGURED, keyboard: backToCatalogue() });
        await alertAdmins(api, alertTexts.paymentsNotConfigured);
        return;
      }
      const result = await shop.orders.place({ userId, productId, days, expectedRub: rub });
      switch (result.kind) {
        case "placed":
        case "existing":
          await answer(api, ctx.payload.id);
          await show(api, place, await paymentScreen(result.order, testPayments));
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
      if (!(await shop.admins.isAdmin(userId))) {
        await answer(api, ctx.payload.id, ADMIN_ONLY, { alert: true });
        return;
      }
      if (!(await shop.settings.get()).testPayments) {
        await answer(api, ctx.payload.id, TEST_PAY_OFF, { alert: true });
        return;
      }
      const order = await shop.orders.byId(orderId);
      if (!order || order.userId !== userId) {
        await answer(api, ctx.payload.id, STALE_BUTTON);
        return;
      }
      const result = await payments.payTest(orderId, userId);
      if (!result.ok) {
        await answer(api, ctx.payload.id, result.reason, { alert: true });
        return;
      }
      log.info("test payment made from the bot", { orderId, adminId: userId });
      await answer(api, ctx.payload.id, TEST_PAY_ACCEPTED);
      await show(api, placeOf(ctx.payload), { text: testPaidText(orderId), keyboard: backToCatalogue() });
    });
}
