import { Composer, type TelegramCallbackQuery } from "gramio";
import { isDuration } from "../../lib/durations.ts";
import type { PromoRefusal, RenewalPromoQuote, RenewalQuote } from "../../payments/checkout.ts";
import type { PaymentOption } from "../../payments/provider.ts";
import type { OwnedKey } from "../../shop/keys/self-service.ts";
import type { Order } from "../../shop/orders/orders.ts";
import type { RenewalOffer } from "../../shop/orders/renewals.ts";
import type { CodeEntry } from "../../shop/promos/entry.ts";
import { TEST_ONLY_PAYMENT } from "../../shop/texts/admins.ts";
import {
  KEY_BANNED,
  PAYMENTS_NOT_CONFIGURED,
  PRICE_CHANGED,
  PROMO_PROMPT,
  promoGuessingText,
  promoRefusedText,
  RENEW_DURATION_GONE,
  RENEW_UNAVAILABLE,
  renewalPaidByPromoText,
  renewalPaymentText,
  renewChooseText,
  renewConfirmText,
  STALE_BUTTON,
} from "../../shop/texts/buyers.ts";
import {
  backToPurchases,
  pattern,
  paymentKeyboard,
  promoPromptKeyboardFor,
  renewalKeyboard,
  renewConfirmKeyboard,
} from "../keyboards.ts";
import { answer, type BotApi, type BotDeps, type Place, placeOf, type Screen, show } from "../screen.ts";
import { stalePurchase } from "../views.ts";

const durationsScreen = (key: OwnedKey, offers: RenewalOffer[], above?: string): Screen => {
  const text = renewChooseText(key);
  return { text: above ? `${above}\n\n${text}` : text, keyboard: renewalKeyboard(key.id, offers) };
};

const confirmScreen = (key: OwnedKey, offer: RenewalOffer, above?: string): Screen => {
  const text = renewConfirmText(key, offer.days, offer.rub);
  return { text: above ? `${above}\n\n${text}` : text, keyboard: renewConfirmKeyboard(key.id, offer.days, offer.rub) };
};

const promoConfirmScreen = (q: Extract<RenewalPromoQuote, { kind: "ok" }>): Screen => ({
  text: renewConfirmText(q.key, q.offer.days, q.price.rub, { ...q.promo, listRub: q.offer.rub }),
  keyboard: renewConfirmKeyboard(q.key.id, q.offer.days, q.offer.rub, { code: q.promo.code, rub: q.price.rub }),
});

function paymentScreen(order: Order, key: OwnedKey, options: PaymentOption[]): Screen {
  if (options.length === 0) return { text: PAYMENTS_NOT_CONFIGURED, keyboard: backToPurchases() };
  const stars = options.find((o) => o.provider === "telegram_stars")?.stars ?? null;
  const text = renewalPaymentText(
    order,
    key.key,
    stars,
    options.some((o) => o.provider === "anypay"),
  );
  const testOnly = options.every((o) => o.provider === "test");
  return { text: testOnly ? `${text}\n\n${TEST_ONLY_PAYMENT}` : text, keyboard: paymentKeyboard(options, "purchases") };
}

const refusalText = (r: PromoRefusal) =>
  r.kind === "promo_refused" ? promoRefusedText(r.verdict, "renewal") : promoGuessingText(r.retryAfterS, "renewal");

/**
 * What a stale renewal button gets, whatever the step: a key that is not (or no longer) the buyer's, banned, or of a
 * product no longer renewed → the notice and the fresh «Мои покупки»; a duration without its price, or a price that
 * changed → the notice and the key's durations as they are now. Answers the press.
 */
async function staleRenewal(
  deps: BotDeps,
  api: BotApi,
  query: TelegramCallbackQuery,
  q: Exclude<RenewalQuote, { kind: "ok" }>,
  days: number,
): Promise<void> {
  switch (q.kind) {
    case "not_yours":
      return stalePurchase(deps, api, query);
    case "banned":
      return stalePurchase(deps, api, query, KEY_BANNED);
    case "unavailable":
      return stalePurchase(deps, api, query, RENEW_UNAVAILABLE);
    case "duration_gone":
      await answer(api, query.id, RENEW_DURATION_GONE(days));
      await show(api, placeOf(query), durationsScreen(q.key, q.offers));
      return;
    case "price_changed":
      await answer(api, query.id, PRICE_CHANGED(q.rub));
      await show(api, placeOf(query), durationsScreen(q.key, q.offers));
      return;
  }
}

/**
 * The buyer typed a promo code on a renewal's confirmation (the storefront hears the message and hands it here):
 * the confirmation again at the new price, or at the old one with why. A new message, as for a purchase.
 */
export async function renewalPromoTyped(
  deps: BotDeps,
  api: BotApi,
  userId: number,
  entry: CodeEntry & { keyId: number },
  code: string,
): Promise<void> {
  const place: Place = { chatId: userId };
  const q = await deps.checkout.quoteRenewalPromo({ userId, ...entry, seenRub: entry.rub, code });
  switch (q.kind) {
    case "ok":
      return show(api, place, promoConfirmScreen(q));
    case "promo_refused":
    case "promo_guessing":
      return show(api, place, confirmScreen(q.key, q.offer, refusalText(q)));
    case "duration_gone":
      return show(api, place, durationsScreen(q.key, q.offers, RENEW_DURATION_GONE(entry.days)));
    case "price_changed":
      return show(api, place, durationsScreen(q.key, q.offers, PRICE_CHANGED(q.rub)));
    // The buyer typed, they pressed nothing: the reason the renewal stopped, not a stale button.
    case "banned":
      return show(api, place, { text: KEY_BANNED, keyboard: backToPurchases() });
    case "unavailable":
      return show(api, place, { text: RENEW_UNAVAILABLE, keyboard: backToPurchases() });
    case "not_yours":
      return show(api, place, { text: STALE_BUTTON, keyboard: backToPurchases() });
  }
}

/**
 * «Продлить» under a key in «Мои покупки»: the product's durations that have a price (no stock is needed — the key
 * is the buyer's already), the confirmation with the key (and an optional promo code), then the order and its payment
 * button, as for a purchase. Every press names the key by id and is checked against what this user owns now by the
 * checkout and the shop, so a forged one gets nothing and a stale one gets a notice and the fresh screen.
 */
export function renewal(deps: BotDeps) {
  const { shop, checkout } = deps;

  async function confirm(
    api: BotApi,
    query: TelegramCallbackQuery,
    input: { keyId: number; days: number; rub: number; promoCode: string | null },
  ): Promise<void> {
    const { keyId, days, rub, promoCode } = input;
    const userId = query.from.id;
    const place = placeOf(query);
    if (!isDuration(days)) return stalePurchase(deps, api, query);
    const result = await checkout.placeRenewal({ userId, keyId, days, seenRub: rub, promoCode });
    switch (result.kind) {
      case "placed":
        await answer(api, query.id);
        return show(api, place, paymentScreen(result.order, result.key, result.options));
      case "paid_by_promo":
        await answer(api, query.id);
        return show(api, place, { text: renewalPaidByPromoText(result.order), keyboard: backToPurchases() });
      case "no_way_to_pay":
        await answer(api, query.id);
        return show(api, place, { text: PAYMENTS_NOT_CONFIGURED, keyboard: backToPurchases() });
      case "not_yours":
      case "banned":
      case "unavailable":
      case "duration_gone":
        return staleRenewal(deps, api, query, result, days);
      case "price_changed": {
        const fresh = await shop.orders.renewals.offers(userId, keyId);
        if (fresh.kind !== "ok") return staleRenewal(deps, api, query, fresh, days);
        await answer(api, query.id, PRICE_CHANGED(result.rub));
        return show(api, place, durationsScreen(fresh.key, fresh.offers));
      }
      case "promo_refused":
      case "promo_guessing": {
        // The code stopped applying between the typing and the press: the renewal goes on at its price.
        const q = await checkout.quoteRenewal(userId, keyId, days, rub);
        if (q.kind !== "ok") return staleRenewal(deps, api, query, q, days);
        await answer(api, query.id);
        return show(api, place, confirmScreen(q.key, q.offer, refusalText(result)));
      }
    }
  }

  const numbers = (data: RegExpMatchArray) => [Number(data[1]), Number(data[2]), Number(data[3])] as const;

  return new Composer({ name: "renewal" })
    .callbackQuery(pattern.renew, async (ctx) => {
      const api = ctx.bot.api;
      const found = await shop.orders.renewals.offers(ctx.payload.from.id, Number(ctx.queryData[1]));
      if (found.kind !== "ok") return staleRenewal(deps, api, ctx.payload, found, 0);
      await answer(api, ctx.payload.id);
      await show(api, placeOf(ctx.payload), durationsScreen(found.key, found.offers));
    })
    .callbackQuery(pattern.renewOffer, async (ctx) => {
      const api = ctx.bot.api;
      const [keyId, days, rub] = numbers(ctx.queryData);
      // Back from the promo code prompt («Отмена») comes here too: the code is not awaited any more.
      await shop.promos.entries.stop(ctx.payload.from.id);
      const q = await checkout.quoteRenewal(ctx.payload.from.id, keyId, days, rub);
      if (q.kind !== "ok") return staleRenewal(deps, api, ctx.payload, q, days);
      await answer(api, ctx.payload.id);
      await show(api, placeOf(ctx.payload), confirmScreen(q.key, q.offer));
    })
    .callbackQuery(pattern.renewPromo, async (ctx) => {
      const api = ctx.bot.api;
      const [keyId, days, rub] = numbers(ctx.queryData);
      const q = await checkout.quoteRenewal(ctx.payload.from.id, keyId, days, rub);
      if (q.kind !== "ok") return staleRenewal(deps, api, ctx.payload, q, days);
      const entry = { productId: q.key.productId, days, rub, keyId };
      await shop.promos.entries.await(ctx.payload.from.id, entry);
      await answer(api, ctx.payload.id);
      await show(api, placeOf(ctx.payload), { text: PROMO_PROMPT, keyboard: promoPromptKeyboardFor(entry) });
    })
    .callbackQuery(pattern.renewConfirm, async (ctx) => {
      const [keyId, days, rub] = numbers(ctx.queryData);
      await confirm(ctx.bot.api, ctx.payload, { keyId, days, rub, promoCode: null });
    })
    .callbackQuery(pattern.renewConfirmPromo, async (ctx) => {
      const [keyId, days, rub] = numbers(ctx.queryData);
      await confirm(ctx.bot.api, ctx.payload, { keyId, days, rub, promoCode: ctx.queryData[4]! });
    });
}
