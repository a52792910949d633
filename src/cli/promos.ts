import type { DurationDays } from "../lib/durations.ts";
import { discountLabel } from "../shop/promos/discount.ts";
import { canonicalCode, codeProblem, MAX_PROMO_RUB, MAX_PROMO_USES, parseDay } from "../shop/promos/promos.ts";
import { command, days, UsageError, wholeNumber } from "./command.ts";

/** The CLI's commands for promo codes (docs/operator.md#cli): add one, list them, switch one off. */

/** `--per-user N`, or `none` for no limit per buyer. */
function limit(text: string | undefined, name: string, fallback: number | null): number | null {
  if (text === undefined) return fallback;
  if (text === "none") return null;
  return wholeNumber(text, `--${name}`, 1, MAX_PROMO_USES);
}

function code(text: string): string {
  const canonical = canonicalCode(text);
  if (canonical === null) throw new UsageError(`code: ${codeProblem(text)}`);
  return canonical;
}

export const promoAdd = command({
  name: "promo:add",
  usage:
    "promo:add <code> (--percent P | --rub R) [--product NAME] [--days D,...] [--uses N] [--per-user N|none] [--until YYYY-MM-DD]",
  summary:
    "create a promo code: P % (1–100) or R roubles off, for one product and some durations or all; --uses in all, --per-user per buyer (default 1), valid through the Moscow day --until",
  positionals: { min: 1, max: 1 },
  options: ["percent", "rub", "product", "days", "uses", "per-user", "until"],
  parse: ({ positionals: [text], options }) => {
    const percent = options.get("percent");
    const rub = options.get("rub");
    if ((percent === undefined) === (rub === undefined)) throw new UsageError("give exactly one of --percent, --rub");
    const daysText = options.get("days");
    const until = options.get("until");
    if (until !== undefined && parseDay(until) === null) {
      throw new UsageError(`--until must be a date like 2026-12-31, got "${until}"`);
    }
    return {
      code: code(text!),
      discount:
        percent !== undefined
          ? { percent: wholeNumber(percent, "--percent", 1, 100), rub: null }
          : { percent: null, rub: wholeNumber(rub!, "--rub", 1, MAX_PROMO_RUB) },
      product: options.get("product") ?? null,
      days:
        daysText === undefined
          ? null
          : ([...new Set(daysText.split(",").map((d) => days(d.trim())))] as DurationDays[]),
      maxUses: limit(options.get("uses"), "uses", null),
      maxUsesPerBuyer: limit(options.get("per-user"), "per-user", 1),
      validUntil: until ?? null,
    };
  },
  run: async ({ shop, io }, input) => {
    const product = input.product === null ? null : await shop.products.require(input.product);
    const promo = await shop.promos.create(input.code, {
      discount: input.discount,
      productId: product?.id ?? null,
      days: input.days,
      maxUses: input.maxUses,
      maxUsesPerBuyer: input.maxUsesPerBuyer,
      validUntil: input.validUntil,
      enabled: true,
    });
    io.out(`promo added: ${promo.code}, ${describe(promo)}`);
    return 0;
  },
});

function describe(p: {
  discount: Parameters<typeof discountLabel>[0];
  productName: string | null;
  days: DurationDays[] | null;
  maxUses: number | null;
  maxUsesPerBuyer: number | null;
  validUntil: string | null;
}): string {
  return [
    discountLabel(p.discount).replace("−", "-").replace(" ₽", " RUB"),
    p.productName === null ? "all products" : `product ${p.productName}`,
    p.days === null ? "all durations" : `${p.days.join(",")} days`,
    `uses ${p.maxUses ?? "unlimited"}`,
    `per buyer ${p.maxUsesPerBuyer ?? "unlimited"}`,
    `until ${p.validUntil ?? "-"}`,
  ].join(", ");
}

export const promoList = command({
  name: "promo:list",
  usage: "promo:list",
  summary:
    "every promo code, newest first, tab-separated: code, discount, product, days, used/limit, held, revenue RUB, revenue XTR, until, state",
  positionals: { min: 0, max: 0 },
  parse: () => ({}),
  run: async ({ shop, io }) => {
    const promos = await shop.promos.list();
    io.out(["code", "discount", "product", "days", "used", "held", "rub", "stars", "until", "state"].join("\t"));
    for (const p of promos) {
      io.out(
        [
          p.code,
          discountLabel(p.discount).replace("−", "-").replace(" ₽", " RUB"),
          p.productName ?? "*",
          p.days === null ? "*" : p.days.join(","),
          p.maxUses === null ? String(p.used) : `${p.used}/${p.maxUses}`,
          String(p.held),
          String(p.revenueRub),
          String(p.revenueStars),
          p.validUntil ?? "-",
          !p.enabled ? "off" : p.expired ? "expired" : "on",
        ].join("\t"),
      );
    }
    return 0;
  },
});

export const promoDisable = command({
  name: "promo:disable",
  usage: "promo:disable <code>",
  summary: "switch a promo code off: buyers can no longer apply it (orders already holding it can still be paid)",
  positionals: { min: 1, max: 1 },
  parse: ({ positionals: [text] }) => ({ code: code(text!) }),
  run: async ({ shop, io }, input) => {
    const promo = await shop.promos.byCode(input.code);
    if (!promo) {
      io.err(`error: no promo code ${input.code}`);
      return 1;
    }
    await shop.promos.setEnabled(promo.id, false);
    io.out(`promo disabled: ${promo.code}`);
    return 0;
  },
});
