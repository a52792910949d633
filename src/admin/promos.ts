import {
  NEW_PROMO,
  PromoForm,
  type PromoFormValues,
  PromoPage,
  PromosPage,
  promoValues,
} from "../../templates/promos.tsx";
import type { FieldErrors, View } from "../../templates/view.ts";
import { DURATIONS, type DurationDays, parseDuration } from "../lib/durations.ts";
import { log } from "../lib/log.ts";
import { notFound, ShopError } from "../shop/errors.ts";
import {
  codeProblem,
  MAX_PROMO_RUB,
  MAX_PROMO_USES,
  type PromoCode,
  type PromoInput,
  parseDay,
} from "../shop/promos/promos.ts";
import type { PanelContext } from "./context.ts";
import type { PanelRoutes } from "./guard.ts";
import { field, fields, idParam, isHtmx, queryText, redirect, render } from "./respond.ts";

/** A whole number typed into the form, "" meaning none; undefined when it is not one in [min, max]. */
function optionalWhole(text: string, min: number, max: number): number | null | undefined {
  const t = text.replace(/\s/g, "");
  if (t === "") return null;
  if (!/^\d{1,9}$/.test(t)) return undefined;
  const n = Number(t);
  return n >= min && n <= max ? n : undefined;
}

/** The form as typed, and the code's settings when every field makes sense (else the errors, by field). */
function readForm(
  body: unknown,
  enabledNow: boolean | null,
): { values: PromoFormValues; input: PromoInput | null; errors: FieldErrors } {
  const values: PromoFormValues = {
    code: field(body, "code").trim(),
    kind: field(body, "kind") === "rub" ? "rub" : "percent",
    amount: field(body, "amount").trim(),
    productId: field(body, "productId").trim(),
    days: fields(body, "days"),
    maxUses: field(body, "maxUses").trim(),
    maxUsesPerBuyer: field(body, "maxUsesPerBuyer").trim(),
    validUntil: field(body, "validUntil").trim(),
    enabled: enabledNow ?? field(body, "enabled") === "on",
  };
  const errors: FieldErrors = {};
  const amount =
    values.kind === "percent" ? optionalWhole(values.amount, 1, 100) : optionalWhole(values.amount, 1, MAX_PROMO_RUB);
  if (amount === undefined || amount === null) {
    errors.amount =
      values.kind === "percent" ? "Процент — целое число от 1 до 100" : "Рубли — целое число от 1 до 10 000 000";
  }
  const productId = values.productId === "" ? null : idParam(values.productId);
  if (productId === undefined || (values.productId !== "" && productId === null)) errors.productId = "Выберите товар";
  const days = values.days.map(parseDuration);
  if (days.some((d) => d === null)) errors.days = `Сроки — из ${DURATIONS.join(", ")} дней`;
  const maxUses = optionalWhole(values.maxUses, 1, MAX_PROMO_USES);
  if (maxUses === undefined) errors.maxUses = "Целое число от 1 до 1 000 000, или пусто";
  const perBuyer = optionalWhole(values.maxUsesPerBuyer, 1, MAX_PROMO_USES);
  if (perBuyer === undefined) errors.maxUsesPerBuyer = "Целое число от 1 до 1 000 000, или пусто";
  const validUntil = values.validUntil === "" ? null : parseDay(values.validUntil);
  if (validUntil === null && values.validUntil !== "") errors.validUntil = "Дата в виде ГГГГ-ММ-ДД";
  if (Object.keys(errors).length > 0) return { values, input: null, errors };
  return {
    values,
    input: {
      discount: values.kind === "percent" ? { percent: amount!, rub: null } : { percent: null, rub: amount! },
      productId,
      days: days.length === 0 ? null : [...new Set(days as DurationDays[])],
      maxUses: maxUses ?? null,
      maxUsesPerBuyer: perBuyer ?? null,
      validUntil,
      enabled: values.enabled,
    },
    errors,
  };
}

/** A refusal from the domain as an error next to its field (the percent and the roubles share the amount field). */
function fieldError(error: ShopError): FieldErrors {
  const name = error.field === "percent" || error.field === "rub" ? "amount" : (error.field ?? "_");
  return { [name]: error.message };
}

/**
 * Промокоды: the codes with their uses and revenue, creating one, and a code's page where its terms change and it is
 * switched off or on. Every rule of a code is the domain's (shop.promos); this reads the form and answers.
 */
export function promosRoutes(routes: PanelRoutes, panel: PanelContext) {
  const { shop, base } = panel;
  const products = () => shop.products.list({ includeArchived: true });

  async function listPage(
    view: View,
    form: { values: PromoFormValues; errors?: FieldErrors },
    extra: { created?: string; status?: number } = {},
  ) {
    const [promos, all] = await Promise.all([shop.promos.list(), products()]);
    return render(
      PromosPage({ view, promos, form: { products: all, ...form }, created: extra.created }),
      extra.status ?? 200,
    );
  }

  async function requirePromo(idText: string | undefined): Promise<PromoCode> {
    const id = idParam(idText);
    const promo = id === null ? null : await shop.promos.byId(id);
    if (!promo) throw notFound("Такого промокода нет.");
    return promo;
  }

  async function codePage(
    view: View,
    promo: PromoCode,
    form: { values?: PromoFormValues; errors?: FieldErrors; saved?: boolean } = {},
    extra: { switched?: string; status?: number } = {},
  ) {
    const [listed, all] = await Promise.all([shop.promos.list(), products()]);
    const item = listed.find((p) => p.id === promo.id);
    if (!item) throw notFound("Такого промокода нет.");
    return render(
      PromoPage({
        view,
        promo: item,
        form: { products: all, values: form.values ?? promoValues(item), errors: form.errors, saved: form.saved },
        switched: extra.switched,
      }),
      extra.status ?? 200,
    );
  }

  return routes
    .get("/promos", ({ query, panel: p }) =>
      listPage(p.view, { values: NEW_PROMO }, { created: queryText(query, "created")?.slice(0, 32) }),
    )
    .post("/promos", async ({ request, body, panel: p }) => {
      const { values, input, errors } = readForm(body, null);
      const problem = codeProblem(values.code);
      if (problem) errors.code = problem;
      const refuse = async (errs: FieldErrors, status: number) =>
        isHtmx(request)
          ? render(PromoForm({ view: p.view, products: await products(), values, errors: errs }), status)
          : listPage(p.view, { values, errors: errs }, { status });
      if (!input || problem) return refuse(errors, 422);
      try {
        const created = await shop.promos.create(values.code, input);
        log.info("panel: promo code created", { code: created.code, login: p.account.login });
        return redirect(request, `${base}/promos?created=${encodeURIComponent(created.code)}`);
      } catch (error) {
        if (error instanceof ShopError && error.code !== "out_of_stock") {
          return refuse(fieldError(error), error.code === "conflict" ? 409 : 422);
        }
        throw error;
      }
    })
    .get("/promos/:id", async ({ params, query, panel: p }) => {
      const promo = await requirePromo(params.id);
      const switched = queryText(query, "switched");
      return codePage(
        p.view,
        promo,
        { saved: queryText(query, "saved") === "1" },
        {
          switched: switched === "on" ? "Промокод включён." : switched === "off" ? "Промокод выключен." : undefined,
        },
      );
    })
    .post("/promos/:id", async ({ request, params, body, panel: p }) => {
      const promo = await requirePromo(params.id);
      const { values, input, errors } = readForm(body, promo.enabled);
      values.code = promo.code;
      const refuse = async (errs: FieldErrors, status: number) =>
        isHtmx(request)
          ? render(PromoForm({ view: p.view, products: await products(), values, errors: errs, promo }), status)
          : codePage(p.view, promo, { values, errors: errs }, { status });
      if (!input) return refuse(errors, 422);
      try {
        await shop.promos.update(promo.id, input);
      } catch (error) {
        if (error instanceof ShopError && error.code !== "out_of_stock") {
          return refuse(fieldError(error), error.code === "not_found" ? 404 : 422);
        }
        throw error;
      }
      log.info("panel: promo code changed", { code: promo.code, login: p.account.login });
      return redirect(request, `${base}/promos/${promo.id}?saved=1`);
    })
    .post("/promos/:id/enabled", async ({ request, params, body, query, panel: p }) => {
      const promo = await requirePromo(params.id);
      const wanted = field(body, "enabled");
      if (wanted !== "on" && wanted !== "off") {
        return codePage(
          p.view,
          promo,
          {
            errors: { _: "Не понятно, что сделать: обновите страницу и нажмите кнопку ещё раз." },
          },
          { status: 422 },
        );
      }
      await shop.promos.setEnabled(promo.id, wanted === "on");
      log.info("panel: promo code switched", { code: promo.code, on: wanted === "on", login: p.account.login });
      const back = queryText(query, "back") === "list" ? "/promos" : `/promos/${promo.id}?switched=${wanted}`;
      return redirect(request, `${base}${back}`);
    });
}
