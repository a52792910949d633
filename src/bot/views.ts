import type { TelegramCallbackQuery } from "gramio";
import { canBuyerReset } from "../shop/keys/self-service.ts";
import type { CatalogueProduct } from "../shop/products/catalogue.ts";
import { adminModeLine } from "../shop/texts/admins.ts";
import {
  CATALOGUE_EMPTY,
  CATALOGUE_TITLE,
  NO_PURCHASES,
  PURCHASES_PER_PAGE,
  productCardText,
  purchasesText,
  STALE_BUTTON,
} from "../shop/texts/buyers.ts";
import { purchaseState } from "../shop/users/purchases.ts";
import { catalogueKeyboard, productKeyboard, purchasesKeyboard } from "./keyboards.ts";
import { answer, type BotApi, type BotDeps, type Place, placeOf, type Screen, show } from "./screen.ts";

/** The catalogue: one button per product on sale; for admins also the mode line and the admin buttons. */
export async function catalogueScreen(deps: BotDeps, userId: number): Promise<Screen> {
  const { shop } = deps;
  const [products, admin, settings] = await Promise.all([
    shop.catalogue.view(),
    shop.admins.isAdmin(userId),
    shop.settings.get(),
  ]);
  const lines: string[] = [];
  if (admin) lines.push(adminModeLine(!settings.botEnabled ? "off" : settings.maintenance ? "maintenance" : "on"), "");
  lines.push(products.length > 0 ? CATALOGUE_TITLE : CATALOGUE_EMPTY);
  return {
    text: lines.join("\n"),
    keyboard: catalogueKeyboard(products, admin ? { maintenance: settings.maintenance } : null),
  };
}

export const productScreen = (product: CatalogueProduct): Screen => ({
  text: productCardText(product.description),
  keyboard: productKeyboard(product),
});

/**
 * The freshest thing to show after a stale press: the product's card if it is still on sale, else the catalogue.
 * `soldOut`: a duration the buyer was just told has no key left. The cached catalogue may not know yet — the keys
 * went to buyers whose orders commit a moment later, and only then is the cache dropped — so it is left off the card
 * rather than offered again.
 */
export async function freshCard(
  deps: BotDeps,
  api: BotApi,
  place: Place,
  userId: number,
  productId: number,
  soldOut?: number,
): Promise<void> {
  let product = await deps.shop.catalogue.product(productId);
  if (product && soldOut !== undefined) {
    const offers = product.offers.filter((o) => o.days !== soldOut);
    product = offers.length > 0 ? { ...product, offers } : null;
  }
  await show(api, place, product ? productScreen(product) : await catalogueScreen(deps, userId));
}

/**
 * A page of «Мои покупки» (1-based): the entries, and under each key «Продлить» unless it is banned, and «Сбросить
 * привязку» when the buyer may reset it. «Продлить» stays under a key whose product is no longer renewed (archived,
 * no price), as the contract shows it under every key not banned: the press then says renewal is unavailable, which
 * tells the buyer more than a button that is silently missing. A page past the end (an old «Старше ›» after
 * purchases went away) shows the last page there is.
 */
export async function purchasesScreen(deps: BotDeps, userId: number, page = 1): Promise<Screen> {
  const { shop } = deps;
  const perPage = PURCHASES_PER_PAGE;
  let { items, total } = await shop.purchases.of(userId, { offset: (page - 1) * perPage, limit: perPage });
  const pages = Math.max(1, Math.ceil(total / perPage));
  if (items.length === 0 && total > 0) {
    page = pages;
    ({ items, total } = await shop.purchases.of(userId, { offset: (page - 1) * perPage, limit: perPage }));
  }
  if (total === 0) return { text: NO_PURCHASES, keyboard: purchasesKeyboard([], { page: 1, pages: 1 }) };
  const settings = await shop.settings.get();
  const now = new Date();
  const first = (page - 1) * perPage + 1;
  const shown = items.map((p) => ({ purchase: p, state: p.kind === "key" ? purchaseState(p, now) : null }));
  const keys = items.flatMap((p, i) =>
    p.kind === "key"
      ? [{ n: first + i, keyId: p.keyId, renew: p.bannedAt === null, reset: canBuyerReset(p, settings) }]
      : [],
  );
  return {
    text: purchasesText(shown, { first, page, pages }),
    keyboard: purchasesKeyboard(keys, { page, pages }),
  };
}

/**
 * A press about a key that is not (or no longer) one this buyer can act on — someone else's, banned meanwhile, its
 * product gone: the notice (an alert when it explains something), then the fresh «Мои покупки».
 */
export async function stalePurchase(
  deps: BotDeps,
  api: BotApi,
  query: TelegramCallbackQuery,
  notice = STALE_BUTTON,
): Promise<void> {
  await answer(api, query.id, notice, { alert: notice !== STALE_BUTTON });
  await show(api, placeOf(query), await purchasesScreen(deps, query.from.id));
}
