import {
  ArchiveToggle,
  BuildSection,
  type CreateFormProps,
  CreateProductForm,
  DescriptionForm,
  NameCheck,
  PricesForm,
  ProductsPage,
} from "../../templates/products.tsx";
import type { View } from "../../templates/view.ts";
import { readUpload } from "../http/upload.ts";
import { DURATIONS, type DurationDays } from "../lib/durations.ts";
import { log } from "../lib/log.ts";
import { ShopError } from "../shop/errors.ts";
import { MAX_STARS_PRICE, productNameProblem } from "../shop/products/products.ts";
import type { PanelContext } from "./context.ts";
import { csrfRefusal, type PanelRoutes } from "./guard.ts";
import { productPage, requireProduct } from "./product-page.ts";
import { field, fields, isHtmx, isPartial, queryText, redirect, render } from "./respond.ts";
import { CSRF_FIELD, csrfValid } from "./session.ts";

/**
 * Продукты (+API): the catalogue, creating a product (with name checks while typing), and a product's page:
 * description, build, prices, archive. Keys live in keys.ts.
 */
export function productsRoutes(routes: PanelRoutes, panel: PanelContext) {
  const { shop } = panel;

  async function listPage(view: View, form?: Omit<CreateFormProps, "view">, status = 200) {
    const [products, stock] = await Promise.all([shop.products.list({ includeArchived: true }), shop.products.stock()]);
    return render(ProductsPage({ view, products, stock, form: form ? { view, ...form } : undefined }), status);
  }

  /** Why this name cannot be a new product, or null: the same rules as the domain, plus "already exists". */
  async function nameProblem(name: string): Promise<string | null> {
    return productNameProblem(name) ?? ((await shop.products.byName(name)) ? `Продукт «${name}» уже существует` : null);
  }

  const productUrl = (id: number) => `${panel.base}/products/${id}`;

  return routes
    .get("/products", ({ panel: p }) => listPage(p.view))
    .get("/products/check-name", async ({ query }) => {
      const name = queryText(query, "name") ?? "";
      return render(NameCheck({ problem: name === "" ? null : await nameProblem(name) }));
    })
    .post("/products", async ({ request, body, panel: p }) => {
      const values = { name: field(body, "name"), description: field(body, "description") };
      const refuse = (errors: Record<string, string>, status = 422) =>
        isHtmx(request)
          ? render(CreateProductForm({ view: p.view, values, errors }), status)
          : listPage(p.view, { values, errors }, status);
      const problem = await nameProblem(values.name);
      if (problem) return refuse({ name: problem });
      try {
        const product = await shop.products.create(values);
        return redirect(request, productUrl(product.id));
      } catch (error) {
        if (error instanceof ShopError && (error.code === "invalid" || error.code === "conflict")) {
          return refuse({ [error.field ?? "name"]: error.message }, error.code === "conflict" ? 409 : 422);
        }
        throw error;
      }
    })
    .get("/products/:id", async ({ params, query, panel: p }) =>
      productPage(panel, p.view, await requireProduct(panel, params.id), { query }),
    )
    .get("/products/:id/prices", async ({ request, params, panel: p }) => {
      const product = await requireProduct(panel, params.id);
      if (!isPartial(request)) return productPage(panel, p.view, product);
      const [prices, starsPrices, [stock]] = await Promise.all([
        shop.products.prices(product.id),
        shop.products.starsPrices(product.id),
        shop.products.stock(product.id),
      ]);
      return render(PricesForm({ view: p.view, product, prices, starsPrices, stock }));
    })
    .post("/products/:id/prices", async ({ request, params, body, panel: p }) => {
      const product = await requireProduct(panel, params.id);
      const values: Record<string, string> = {};
      const errors: Record<string, string> = {};
      /** `stars` undefined: the form had no such field (a page opened before Stars prices), so it stays as it is. */
      const wanted: { days: DurationDays; rub: number | null; stars: number | null | undefined }[] = [];
      /** A whole number typed in the field (spaces allowed), null when empty or 0, or why it is not one. */
      const amount = (name: string, max: number, problem: string): number | null | { error: string } => {
        const text = field(body, name).replace(/\s/g, "");
        values[name] = text;
        if (text === "" || text === "0") return null;
        if (!/^\d{1,8}$/.test(text) || Number(text) > max) return { error: problem };
        return Number(text);
      };
      for (const days of DURATIONS) {
        const rub = amount(`price_${days}`, 10_000_000, "Целое число рублей до 10 000 000");
        const stars = amount(`stars_${days}`, MAX_STARS_PRICE, "Целое число звёзд до 100 000");
        if (rub !== null && typeof rub === "object") errors[`price_${days}`] = rub.error;
        if (stars !== null && typeof stars === "object") errors[`stars_${days}`] = stars.error;
        const starsSent = fields(body, `stars_${days}`).length > 0;
        if (typeof rub !== "object" || rub === null) {
          if (typeof stars !== "object" || stars === null)
            wanted.push({ days, rub, stars: starsSent ? stars : undefined });
        }
      }
      const answer = async (status: number, extra: { errors?: Record<string, string>; saved?: boolean }) => {
        const [prices, starsPrices, [stock]] = await Promise.all([
          shop.products.prices(product.id),
          shop.products.starsPrices(product.id),
          shop.products.stock(product.id),
        ]);
        const form = PricesForm({ view: p.view, product, prices, starsPrices, stock, values, ...extra });
        // The badge next to the product's name says whether the bot offers it: it re-reads on this event.
        if (isHtmx(request)) return render(form, status, extra.saved ? { "hx-trigger": "prices-changed" } : {});
        if (status < 400) return redirect(request, productUrl(product.id));
        return productPage(panel, p.view, product, { override: { id: "prices", html: await form }, status });
      };
      if (Object.keys(errors).length > 0) return answer(422, { errors });
      const [current, currentStars] = await Promise.all([
        shop.products.prices(product.id),
        shop.products.starsPrices(product.id),
      ]);
      for (const w of wanted) {
        if ((current[w.days] ?? null) !== w.rub) await shop.products.setPrice(product.id, w.days, w.rub);
        if (w.stars !== undefined && (currentStars[w.days] ?? null) !== w.stars) {
          await shop.products.setStarsPrice(product.id, w.days, w.stars);
        }
      }
      return answer(200, { saved: true });
    })
    .post("/products/:id/description", async ({ request, params, body, panel: p }) => {
      const product = await requireProduct(panel, params.id);
      const description = field(body, "description");
      const answer = async (status: number, extra: { errors?: Record<string, string>; saved?: boolean }) => {
        const fresh = (await shop.products.byId(product.id)) ?? product;
        const typed = extra.errors ? { typed: description } : {};
        const form = DescriptionForm({ view: p.view, product: fresh, ...typed, ...extra });
        if (isHtmx(request)) return render(form, status);
        if (status < 400) return redirect(request, productUrl(product.id));
        return productPage(panel, p.view, product, { override: { id: "description", html: await form }, status });
      };
      try {
        await shop.products.updateDescription(product.id, description);
      } catch (error) {
        if (error instanceof ShopError && error.code === "invalid") {
          return answer(422, { errors: { description: error.message } });
        }
        throw error;
      }
      return answer(200, { saved: true });
    })
    .get("/products/:id/archive", async ({ request, params, panel: p }) => {
      // The badge and button re-read themselves after prices or keys changed on the page.
      const product = await requireProduct(panel, params.id);
      if (!isPartial(request)) return productPage(panel, p.view, product);
      const [stock] = await shop.products.stock(product.id);
      return render(ArchiveToggle({ view: p.view, product, stock }));
    })
    .post("/products/:id/archive", async ({ request, params, body, panel: p }) => {
      const product = await requireProduct(panel, params.id);
      const archived = field(body, "archived");
      if (archived !== "on" && archived !== "off") {
        // Only a hand-made request gets here; it still deserves words, not a bare 422.
        const [stock] = await shop.products.stock(product.id);
        const error = "Не понятно, что сделать: обновите страницу и нажмите кнопку ещё раз.";
        const toggle = ArchiveToggle({ view: p.view, product, stock, error });
        if (isHtmx(request)) return render(toggle, 422);
        return productPage(panel, p.view, product, { override: { id: "archive", html: await toggle }, status: 422 });
      }
      await shop.products.setArchived(product.id, archived === "on");
      if (!isHtmx(request)) return redirect(request, productUrl(product.id));
      const [fresh, [stock]] = await Promise.all([shop.products.byId(product.id), shop.products.stock(product.id)]);
      return render(ArchiveToggle({ view: p.view, product: fresh ?? product, stock }));
    })
    .post(
      "/products/:id/build",
      async ({ request, params, panel: p, csrfChecked }) => {
        // Read as a stream (readUpload, shop.builds.store); parse "none" keeps Elysia from buffering the body.
        const product = await requireProduct(panel, params.id);
        const answer = async (status: number, extra: { errors?: Record<string, string>; saved?: boolean }) => {
          const fresh = (await shop.products.byId(product.id)) ?? product;
          const section = BuildSection({ view: p.view, product: fresh, ...extra });
          if (isHtmx(request)) return render(section, status);
          if (status < 400) return redirect(request, productUrl(product.id));
          return productPage(panel, p.view, product, { override: { id: "build", html: await section }, status });
        };
        let upload: Awaited<ReturnType<typeof readUpload<unknown>>>;
        try {
          upload = await readUpload(request, {
            file: "build",
            onFile: (fields, chunks, filename) => {
              // A plain form's token comes in the body, before the file: no byte is stored without it.
              if (!csrfChecked && !csrfValid(panel, p.claims.sid, fields[CSRF_FIELD])) throw csrfRefusal();
              return shop.builds.store(product.id, chunks, filename);
            },
          });
        } catch (error) {
          if (error instanceof ShopError && error.code === "invalid") {
            return answer(422, { errors: { build: error.message } });
          }
          throw error;
        }
        if (!csrfChecked && !csrfValid(panel, p.claims.sid, upload.fields[CSRF_FIELD])) throw csrfRefusal();
        if (upload.result === null) return answer(422, { errors: { build: "Выберите zip-файл" } });
        log.info("build uploaded from the panel", { productId: product.id, login: p.account.login });
        return answer(200, { saved: true });
      },
      { parse: "none" },
    );
}
