import type { KeyCounts, KeyRowError, KeysQuery } from "../../templates/keys.tsx";
import { ProductPage, type ProductPageProps } from "../../templates/products.tsx";
import type { View } from "../../templates/view.ts";
import { isDuration } from "../lib/durations.ts";
import { notFound } from "../shop/errors.ts";
import type { KeyList } from "../shop/keys/lists.ts";
import type { Product } from "../shop/products/products.ts";
import type { StockLine } from "../shop/products/stock.ts";
import type { PanelContext } from "./context.ts";
import { idParam, queryText, render } from "./respond.ts";

/** The key list a URL asks for: ?list=unsold|sold&days=N&q=text (anything else falls back to the defaults). */
export function keysQuery(query: Record<string, unknown>): KeysQuery {
  const list: KeyList = queryText(query, "list") === "sold" ? "sold" : "unsold";
  const daysNumber = Number(queryText(query, "days"));
  return {
    list,
    days: isDuration(daysNumber) ? daysNumber : undefined,
    q: (queryText(query, "q") ?? "").trim().slice(0, 128),
  };
}

export async function requireProduct(panel: PanelContext, idText: string | undefined): Promise<Product> {
  const id = idParam(idText);
  const product = id === null ? null : await panel.shop.products.byId(id);
  if (!product) throw notFound("Такого продукта нет.");
  return product;
}

/** Keys behind the two tabs: unsold (available + reserved) and sold. */
export function countsOf(line: StockLine | undefined): KeyCounts {
  let unsold = 0;
  let sold = 0;
  for (const d of line?.durations ?? []) {
    unsold += d.available + d.reserved;
    sold += d.sold;
  }
  return { unsold, sold };
}

/** The keys this process signs the auth API's answers with: what a loader built now must pin. */
async function signingKeys(panel: PanelContext) {
  await panel.shop.signing.ready();
  return panel.shop.signing.activeKeys();
}

/** A product's whole page, optionally with one section replaced (a plain form post that came back with errors). */
export async function productPage(
  panel: PanelContext,
  view: View,
  product: Product,
  options: {
    query?: Record<string, unknown>;
    override?: ProductPageProps["override"];
    /** A refused action on one key, shown in its row (the query should list that key). */
    rowError?: KeyRowError;
    status?: number;
  } = {},
): Promise<Response> {
  const query = keysQuery(options.query ?? {});
  const [prices, starsPrices, [stock], page] = await Promise.all([
    panel.shop.products.prices(product.id),
    panel.shop.products.starsPrices(product.id),
    panel.shop.products.stock(product.id),
    panel.shop.keys.list(product.id, {
      ...query,
      after: queryText(options.query ?? {}, "after"),
      before: queryText(options.query ?? {}, "before"),
    }),
  ]);
  return render(
    ProductPage({
      view,
      product,
      prices,
      starsPrices,
      stock,
      keys: { query, page, counts: countsOf(stock), rowError: options.rowError },
      signingKeys: await signingKeys(panel),
      override: options.override,
    }),
    options.status ?? 200,
  );
}
