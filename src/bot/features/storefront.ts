import { Composer, type TelegramCallbackQuery } from "gramio";
import { isDuration } from "../../lib/durations.ts";
import { log } from "../../lib/log.ts";
import type { PromoQuote, PromoRefusal } from "../../payments/checkout.ts";
import type { PaymentOption } from "../../payments/provider.ts";
import type { Order } from "../../shop/orders/orders.ts";
import type { CatalogueProduct, Offer } from "../../shop/products/catalogue.ts";
import type { CodeEntry } from "../../shop/promos/entry.ts";
import {
  ADMIN_ONLY,
  TEST_ONLY_PAYMENT,
  TEST_PAY_ACCEPTED,
  TEST_PAY_OFF,
  testPaidText,
} from "../../shop/texts/admins.ts";
import {
  CHOOSE_DURATION,
  confirmText,
  confirmWithCodeText,
  PAYMENTS_NOT_CONFIGURED,
  PRICE_CHANGED,
  PROMO_PROMPT,
  PROMO_TEXT_ONLY,
  paidByPromoText,
  paymentText,
  promoGuessingText,
  promoRefusedText,
  STALE_BUTTON,
  STALE_DURATION,
  STALE_PRODUCT,
} from "../../shop/texts/buyers.ts";
import {
  backToCatalogue,
  confirmKeyboard,
  pattern,
  paymentKeyboard,
  promoPromptKeyboard,
  promoPromptKeyboardFor,
} from "../keyboards.ts";
import { answer, type BotApi, type BotDeps, type Place, placeOf, type Screen, show } from "../screen.ts";
import * as views from "../views.ts";
import { renewalPromoTyped } from "./renewal.ts";

/**
 * The storefront: catalogue → product card → confirmation (with an optional promo code) → payment link. A promo code
 * typed for a renewal's confirmation is heard here too (one message handler waits for codes) and handed to
 * features/renewal.ts. Every screen after the first edits the message in place; the answer to a typed code is a new
 * message. Every button is checked against the live catalogue; a stale one gets a short notice and the fresh card
 * instead of an error. What a purchase costs, whether a code applies, whether it can be paid and how is the
 * checkout's to say.
 */
export function storefront(deps: BotDeps) {
  const { shop, checkout } = deps;
  const { entries } = shop.promos;
  const catalogueScreen = (userId: number) => views.catalogueScreen(deps, userId);
  const freshCard = (api: BotApi, place: Place, userId: number, productId: number, soldOut?: number) =>
    views.freshCard(deps, api, place, userId, productId, soldOut);
  const { productScreen } = views;

  function paymentScreen(order: Order, options: PaymentOption[]): Screen {
    // The way to pay went away between the check and the link: the buyer gets the same honest answer.
    if (options.length === 0) return { text: PAYMENTS_NOT_CONFIGURED, keyboard: backToCatalogue() };
    const testOnly = options.every((o) => o.provider === "test");
    const stars = options.find((o) => o.provider === "telegram_stars")?.stars ?? null;
    const text = paymentText(
      order,
      stars,
      options.some((o) => o.provider === "anypay"),
    );
    return {
      text: testOnly ? `${text}\n\n${TEST_ONLY_PAYMENT}` : text,
      keyboard: paymentKeyboard(options),
    };
  }

  /** The confirmation at the duration's price, with `above` (why a code was not taken) over it. */
  function confirmScreen(product: CatalogueProduct, offer: Offer, above?: string): Screen {
    const text = confirmText(product.name, offer.days, offer.rub);
    return {
      text: above ? `${above}\n\n${text}` : text,
      keyboard: confirmKeyboard(product.id, offer.days, offer.rub),
    };
  }

  /** The confirmation with a code applied: the new price, the old one named, and «Подтвердить» carrying the code. */
  function promoConfirmScreen(q: Extract<PromoQuote, { kind: "ok" }>): Screen {
    const { product, offer, promo, price } = q;
    return {
      text: confirmWithCodeText(product.name, offer.days, price.rub, { ...promo, listRub: offer.rub }),
      keyboard: confirmKeyboard(product.id, offer.days, offer.rub, { code: promo.code, rub: price.rub }),
    };
  }

  /** Why a code was not taken, in words that say what to do next. */
  const refusalText = (r: PromoRefusal) =>
    r.kind === "promo_refused" ? promoRefusedText(r.verdict) : promoGuessingText(r.retryAfterS);

  /** A typed promo code: the confirmation again, at the new price — or at the old one, with why. A new message. */
  async function promoTyped(api: BotApi, userId: number, entry: CodeEntry, code: string): Promise<void> {
    const place = { chatId: userId };
    const q = await checkout.quotePromo({ userId, ...entry, seenRub: entry.rub, code });
    switch (q.kind) {
      case "ok":
        await show(api, place, promoConfirmScreen(q));
        return;
      case "promo_refused":
      case "promo_guessing":
        await show(api, place, confirmScreen(q.product, q.offer, refusalText(q)));
        return;
      case "price_changed":
        await show(api, place, { ...productScreen(q.product), text: `${PRICE_CHANGED(q.rub)}\n\n${CHOOSE_DURATION}` });
        return;
      case "gone":
        await freshCard(api, place, userId, entry.productId);
        return;
    }
  }

  /** «Подтвердить», with or without a code: the checkout places the order and says how it is paid. */
  async function confirm(
    api: BotApi,
    query: TelegramCallbackQuery,
    input: { productId: number; days: number; rub: number; promoCode: string | null },
  ): Promise<void> {
    const { productId, days, rub, promoCode } = input;
    const userId = query.from.id;
    const place = placeOf(query);
    if (!isDuration(days)) {
      await answer(api, query.id, STALE_BUTTON);
      await freshCard(api, place, userId, productId);
      return;
    }
    const result = await checkout.place({ userId, productId, days, seenRub: rub, promoCode });
    switch (result.kind) {
      case "placed":
        await answer(api, query.id);
        await show(api, place, paymentScreen(result.order, result.options));
        return;
      case "paid_by_promo":
        await answer(api, query.id);
        await show(api, place, { text: paidByPromoText(result.order), keyboard: backToCatalogue() });
        return;
      case "no_way_to_pay":
        await answer(api, query.id);
        await show(api, place, { text: PAYMENTS_NOT_CONFIGURED, keyboard: backToCatalogue() });
        return;
      case "price_changed":
        await answer(api, query.id, PRICE_CHANGED(result.rub));
        await freshCard(api, place, userId, productId);
        return;
      case "out_of_stock":
        await answer(api, query.id, STALE_DURATION(days));
        await freshCard(api, place, userId, productId, days);
        return;
      case "unavailable":
        await answer(api, query.id, STALE_PRODUCT);
        await freshCard(api, place, userId, productId);
        return;
      case "promo_refused":
      case "promo_guessing": {
        // The code stopped applying between the typing and the press: the purchase goes on at its price.
        await answer(api, query.id);
        const product = await shop.catalogue.product(productId);
        const offer = product?.offers.find((o) => o.days === days);
        if (!product || !offer) await freshCard(api, place, userId, productId);
        else await show(api, place, confirmScreen(product, offer, refusalText(result)));
        return;
      }
    }
  }

  return new Composer({ name: "storefront" })
    .on("message", async (ctx, next) => {
      // A buyer who pressed «Ввести промокод»: their next message is the code.
      const from = ctx.payload.from;
      if (!from || ctx.payload.chat.type !== "private") return next();
      const entry = await entries.awaiting(from.id);
      if (!entry) return next();
      const text = ctx.payload.text;
      // A command means the buyer moved on: the code is not awaited any more, and the command does its job.
      if (text?.startsWith("/")) {
        await entries.stop(from.id);
        return next();
      }
      if (text === undefined) {
        await show(
          ctx.bot.api,
          { chatId: from.id },
          {
            text: PROMO_TEXT_ONLY,
            keyboard: promoPromptKeyboardFor(entry),
          },
        );
        return;
      }
      await entries.stop(from.id);
      const { keyId } = entry;
      if (keyId !== undefined)
        await renewalPromoTyped(deps, ctx.bot.api, from.id, { ...entry, keyId }, text.slice(0, 64));
      else await promoTyped(ctx.bot.api, from.id, entry, text.slice(0, 64));
    })
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
      // Back from the promo code prompt («Отмена») comes here too: the code is not awaited any more.
      await entries.stop(ctx.payload.from.id);
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
      await show(api, place, confirmScreen(quote.product, quote.offer));
    })
    .callbackQuery(pattern.promo, async (ctx) => {
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
      await entries.await(ctx.payload.from.id, { productId, days, rub });
      await answer(api, ctx.payload.id);
      await show(api, place, { text: PROMO_PROMPT, keyboard: promoPromptKeyboard(productId, days, rub) });
    })
    .callbackQuery(pattern.confirm, async (ctx) => {
      const [productId, days, rub] = [Number(ctx.queryData[1]), Number(ctx.queryData[2]), Number(ctx.queryData[3])];
      await confirm(ctx.bot.api, ctx.payload, { productId, days, rub, promoCode: null });
    })
    .callbackQuery(pattern.confirmPromo, async (ctx) => {
      const [productId, days, rub] = [Number(ctx.queryData[1]), Number(ctx.queryData[2]), Number(ctx.queryData[3])];
      await confirm(ctx.bot.api, ctx.payload, { productId, days, rub, promoCode: ctx.queryData[4]! });
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
