import {
  CompensateForm,
  GenerateForm,
  ImportForm,
  ImportProgress,
  IssueForm,
  MAX_IMPORT_FILE_BYTES,
} from "../../templates/key-forms.tsx";
import { KeyListBlock, KeysSection, SoldKeyRow, UnsoldKeyRow } from "../../templates/keys.tsx";
import type { View } from "../../templates/view.ts";
import { Refusal } from "../http/errors.ts";
import { isDuration } from "../lib/durations.ts";
import { log } from "../lib/log.ts";
import { ShopError } from "../shop/errors.ts";
import { actor } from "../shop/keys/events.ts";
import { type ImportResult, type KeyRecord, MAX_GENERATE, MAX_IMPORT, parseKeyLines } from "../shop/keys/keys.ts";
import type { KeyListItem } from "../shop/keys/lists.ts";
import type { Product } from "../shop/products/products.ts";
import { parseTelegramId } from "../shop/users/admins.ts";
import type { PanelContext } from "./context.ts";
import type { PanelRoutes } from "./guard.ts";
import { BACKGROUND_IMPORT_FROM, createImportJobs } from "./import-jobs.ts";
import { applyKeyAction, keyAction } from "./key-actions.ts";
import { countsOf, keysQuery, productPage, requireProduct } from "./product-page.ts";
import { field, file, html, idParam, isHtmx, isPartial, queryText, redirect, render } from "./respond.ts";

/** After keys appear or disappear, htmx refreshes the key lists and the stock hints on the product page. */
const KEYS_CHANGED = { "hx-trigger": "keys-changed" };

const CSV_COLUMNS = [
  "key",
  "days",
  "state",
  "created_at",
  "sold_at",
  "buyer_telegram_id",
  "order_id",
  "hwid",
  "activated_at",
  "expires_at",
  "banned_at",
  "note",
] as const;

/**
 * A CSV cell. Text that came from outside (a loader's HWID, a note) and starts like a formula is prefixed with a
 * quote, so opening the file in a spreadsheet never runs it.
 */
function csvCell(value: string | number | Date | null, untrusted = false): string {
  if (value === null) return "";
  let text = value instanceof Date ? value.toISOString() : String(value);
  if (untrusted && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvLine(k: KeyListItem): string {
  return `${[
    csvCell(k.key),
    csvCell(k.days),
    csvCell(k.bannedAt ? "banned" : k.state),
    csvCell(k.createdAt),
    csvCell(k.soldAt),
    csvCell(k.buyerId),
    csvCell(k.orderId),
    csvCell(k.hwid, true),
    csvCell(k.activatedAt),
    csvCell(k.expiresAt),
    csvCell(k.bannedAt),
    csvCell(k.note, true),
  ].join(",")}\r\n`;
}

/**
 * A product's keys: the unsold and sold lists (search, pages, CSV), generating and importing, and the actions on
 * one key (reset HWID, ban/unban, extend, note, delete an unsold one).
 */
export function keysRoutes(routes: PanelRoutes, panel: PanelContext) {
  const { shop } = panel;
  const productUrl = (id: number) => `${panel.base}/products/${id}`;
  const imports = createImportJobs(shop);

  /** The generate/import form for htmx, or the product page around it for a plain form post. */
  async function formAnswer(
    request: Request,
    view: View,
    product: Product,
    id: "generate" | "import" | "issue" | "compensate",
    form: JSX.Element,
    status: number,
    changed: boolean,
  ): Promise<Response> {
    if (isHtmx(request)) return render(form, status, changed ? KEYS_CHANGED : {});
    return productPage(panel, view, product, { override: { id, html: await form }, status });
  }

  return routes
    .get("/products/:id/keys", async ({ request, params, query, panel: p }) => {
      const product = await requireProduct(panel, params.id);
      if (!isPartial(request)) return productPage(panel, p.view, product, { query });
      const q = keysQuery(query);
      const page = await shop.keys.list(product.id, {
        ...q,
        after: queryText(query, "after"),
        before: queryText(query, "before"),
      });
      // The filters and pager swap the list alone; the tabs and the refresh after a change swap the section.
      if (request.headers.get("hx-target") === "div#key-list") {
        return render(KeyListBlock({ view: p.view, productId: product.id, query: q, page }));
      }
      const [stock] = await shop.products.stock(product.id);
      return render(KeysSection({ view: p.view, productId: product.id, query: q, page, counts: countsOf(stock) }));
    })
    .get("/products/:id/keys.csv", async ({ params, query }) => {
      const product = await requireProduct(panel, params.id);
      const q = keysQuery(query);
      const batches = shop.keys.all(product.id, q);
      const encoder = new TextEncoder();
      let exported = 0;
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          // A BOM so spreadsheet programs read the file as UTF-8 (notes may be in Russian).
          controller.enqueue(encoder.encode(`\ufeff${CSV_COLUMNS.join(",")}\r\n`));
        },
        async pull(controller) {
          try {
            const next = await batches.next();
            if (next.done) {
              log.info("keys exported", { productId: product.id, list: q.list, keys: exported });
              controller.close();
              return;
            }
            exported += next.value.length;
            controller.enqueue(encoder.encode(next.value.map(csvLine).join("")));
          } catch (error) {
            log.error("keys export failed", { productId: product.id, error });
            controller.error(error);
          }
        },
        async cancel() {
          await batches.return(undefined);
        },
      });
      const date = new Date().toISOString().slice(0, 10);
      const name = `keys-${product.name}-${q.list}-${date}.csv`;
      return new Response(stream, {
        headers: {
          "content-type": "text/csv; charset=utf-8",
          "content-disposition": `attachment; filename="keys-${product.id}-${q.list}-${date}.csv"; filename*=UTF-8''${encodeURIComponent(name)}`,
          "cache-control": "no-store",
        },
      });
    })
    .post("/products/:id/keys/generate", async ({ request, params, body, panel: p }) => {
      const product = await requireProduct(panel, params.id);
      const values = { days: field(body, "days"), count: field(body, "count").trim() };
      const days = Number(values.days);
      const count = Number(values.count);
      const errors: Record<string, string> = {};
      if (!isDuration(days)) errors.days = "Выберите срок";
      if (!/^\d{1,6}$/.test(values.count) || count < 1 || count > MAX_GENERATE) {
        errors.count = `От 1 до ${MAX_GENERATE.toLocaleString("ru-RU")}`;
      }
      if (Object.keys(errors).length > 0) {
        const form = GenerateForm({ view: p.view, product, values, errors });
        return formAnswer(request, p.view, product, "generate", form, 422, false);
      }
      const keys = await shop.keys.generate(product.id, days, count, actor.panel(p.account.login));
      const form = GenerateForm({ view: p.view, product, values, result: { days, keys } });
      return formAnswer(request, p.view, product, "generate", form, 200, true);
    })
    .post("/products/:id/keys/import", async ({ request, params, body, panel: p }) => {
      const product = await requireProduct(panel, params.id);
      const values = { days: field(body, "days") };
      const days = Number(values.days);
      const pasted = field(body, "keys");
      // A refused form keeps what was pasted (a browser cannot keep a chosen file for us).
      const refuse = (errors: Record<string, string>) => {
        const form = ImportForm({ view: p.view, product, values: { ...values, keys: pasted }, errors });
        return formAnswer(request, p.view, product, "import", form, 422, false);
      };
      if (!isDuration(days)) return refuse({ days: "Выберите срок" });
      const upload = file(body, "file");
      if (upload && upload.size > MAX_IMPORT_FILE_BYTES)
        return refuse({ file: "Файл больше 16 МБ: разбейте его на части" });
      // Both at once is refused rather than merged: the line numbers of bad keys would then match neither
      // the file nor the field, and importing only one would silently drop the other.
      if (upload && pasted.trim() !== "") {
        return refuse({
          keys: "Вставлены ключи и выбран файл — ничего не импортировано. Оставьте что-то одно: очистите поле или уберите файл.",
        });
      }
      const text = upload ? await upload.text() : pasted;
      if (text.trim() === "") return refuse({ keys: "Вставьте ключи или выберите файл" });
      const lines = parseKeyLines(text);
      if (lines.keys.length > MAX_IMPORT) {
        return refuse({ keys: `Не больше ${MAX_IMPORT.toLocaleString("ru-RU")} ключей за раз: разбейте список` });
      }
      // A big import takes seconds: htmx gets a progress block that polls the job instead of a long silence.
      if (isHtmx(request) && lines.keys.length >= BACKGROUND_IMPORT_FROM) {
        const job = imports.start(product.id, days, lines, actor.panel(p.account.login));
        return render(ImportProgress({ view: p.view, product, job }), 202);
      }
      let result: ImportResult;
      try {
        result = await shop.keys.importKeys(product.id, days, lines, { by: actor.panel(p.account.login) });
      } catch (error) {
        if (error instanceof ShopError && error.code === "invalid") return refuse({ keys: error.message });
        throw error;
      }
      const form = ImportForm({ view: p.view, product, values, result: { days, ...result } });
      return formAnswer(request, p.view, product, "import", form, 200, result.imported > 0);
    })
    .post("/products/:id/keys/issue", async ({ request, params, body, panel: p }) => {
      const product = await requireProduct(panel, params.id);
      const values = { days: field(body, "days"), to: field(body, "to").trim(), note: field(body, "note") };
      const days = Number(values.days);
      const to = values.to === "" ? null : parseTelegramId(values.to);
      const errors: Record<string, string> = {};
      if (!isDuration(days)) errors.days = "Выберите срок";
      if (values.to !== "" && to === null) errors.to = "Telegram ID — положительное число (или оставьте пустым)";
      const refuse = (status: number, refused: Record<string, string>) =>
        formAnswer(
          request,
          p.view,
          product,
          "issue",
          IssueForm({ view: p.view, product, values, errors: refused }),
          status,
          false,
        );
      if (Object.keys(errors).length > 0) return refuse(422, errors);
      let key: KeyRecord;
      try {
        key = await shop.keys.issue(product.id, days, to ?? undefined, values.note, actor.panel(p.account.login));
      } catch (error) {
        if (error instanceof ShopError && (error.code === "invalid" || error.code === "out_of_stock")) {
          return refuse(error.code === "invalid" ? 422 : 409, { [error.field ?? "days"]: error.message });
        }
        throw error;
      }
      log.info("key issued from the panel", { productId: product.id, days, to, login: p.account.login });
      const result = { id: key.id, key: key.key, days, to };
      const form = IssueForm({ view: p.view, product, values: { days: values.days }, result });
      return formAnswer(request, p.view, product, "issue", form, 200, true);
    })
    .post("/products/:id/compensate", async ({ request, params, body, panel: p }) => {
      const product = await requireProduct(panel, params.id);
      const values = { days: field(body, "days").trim() };
      const days = /^\d{1,3}$/.test(values.days) ? Number(values.days) : Number.NaN;
      const answer = (
        status: number,
        extra: { errors?: Record<string, string>; result?: { days: number; keys: number } },
      ) =>
        formAnswer(
          request,
          p.view,
          product,
          "compensate",
          CompensateForm({ view: p.view, product, values, ...extra }),
          status,
          (extra.result?.keys ?? 0) > 0,
        );
      let keys: number;
      try {
        keys = await shop.keys.compensate(product.id, days, actor.panel(p.account.login));
      } catch (error) {
        if (error instanceof ShopError && error.code === "invalid")
          return answer(422, { errors: { days: error.message } });
        throw error;
      }
      return answer(200, { result: { days, keys } });
    })
    .get("/products/:id/keys/import/:job", async ({ params, panel: p }) => {
      const product = await requireProduct(panel, params.id);
      const job = imports.collect(product.id, params.job);
      if (!job) {
        const errors = { keys: "Этот импорт уже не отслеживается (сервер перезапускался?): проверьте список ключей." };
        return render(ImportForm({ view: p.view, product, errors }), 404);
      }
      if (!job.finishedAt) return render(ImportProgress({ view: p.view, product, job }));
      const values = { days: String(job.days) };
      if (!job.result) {
        const form = ImportForm({ view: p.view, product, values, errors: { keys: job.error ?? "" } });
        return render(form, 422, KEYS_CHANGED);
      }
      const form = ImportForm({ view: p.view, product, values, result: { days: job.days, ...job.result } });
      return render(form, 200, job.result.imported > 0 ? KEYS_CHANGED : {});
    })
    .post("/products/:id/keys/:keyId/:action", async ({ request, params, body, panel: p }) => {
      const product = await requireProduct(panel, params.id);
      const keyId = idParam(params.keyId);
      const action = params.action === "delete" ? "delete" : keyAction(params.action);
      const key = keyId === null ? null : await shop.keys.item(product.id, keyId);
      if (!key || !action) throw new Refusal(404, "Такого ключа нет (возможно, он уже удалён).");
      const back = `${productUrl(product.id)}/keys?list=${key.state === "sold" ? "sold" : "unsold"}&q=${encodeURIComponent(key.key)}`;
      const row = async (status: number, extra: { error?: string; saved?: string }) => {
        const fresh = (await shop.keys.item(product.id, key.id)) ?? key;
        const props = { view: p.view, productId: product.id, k: fresh, ...extra };
        return render(fresh.state === "sold" ? SoldKeyRow(props) : UnsoldKeyRow(props), status);
      };
      let saved: string;
      try {
        if (action === "delete") {
          await shop.keys.remove({ id: key.id });
          if (!isHtmx(request)) return redirect(request, `${productUrl(product.id)}/keys`);
          // An empty answer removes the row; the event refreshes the counts and the stock hints.
          return html("", 200, KEYS_CHANGED);
        }
        saved = await applyKeyAction(shop, key.id, action, body, actor.panel(p.account.login));
      } catch (error) {
        if (error instanceof ShopError && error.code === "invalid") {
          if (isHtmx(request)) return row(422, { error: error.message });
          // A plain form post: the product page listing this key, with the reason in its row.
          return productPage(panel, p.view, product, {
            query: { list: key.state === "sold" ? "sold" : "unsold", q: key.key },
            rowError: { keyId: key.id, message: error.message },
            status: 422,
          });
        }
        throw error;
      }
      if (!isHtmx(request)) return redirect(request, back);
      return row(200, { saved });
    });
}
