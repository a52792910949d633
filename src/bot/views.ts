import type { CatalogueProduct } from "../shop/products/catalogue.ts";
import { adminModeLine } from "../shop/texts/admins.ts";
import { CATALOGUE_EMPTY, CATALOGUE_TITLE, productCardText } from "../shop/texts/buyers.ts";
import { catalogueKeyboard, productKeyboard } from "./keyboards.ts";
import { type BotApi, type BotDeps, type Place, type Screen, show } from "./screen.ts";

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
