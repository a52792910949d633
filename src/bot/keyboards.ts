import type { TelegramInlineKeyboardButton, TelegramInlineKeyboardMarkup } from "gramio";
import type { PaymentOption } from "../payments/provider.ts";
import { SHARING_ALERT_PATTERN } from "../shop/keys/sharing.ts";
import type { CatalogueProduct } from "../shop/products/catalogue.ts";
import {
  BROADCAST_BUTTON,
  BROADCAST_CANCEL,
  BROADCAST_SEND,
  maintenanceButton,
  TEST_PAY,
} from "../shop/texts/admins.ts";
import {
  BACK,
  CANCEL,
  CONFIRM,
  MY_PURCHASES,
  NEXT_PAGE,
  OTHER_PROMO_BUTTON,
  offerButton,
  PREVIOUS_PAGE,
  PROMO_BUTTON,
  payButton,
  payStarsButton,
  RESET_CONFIRM,
  renewButton,
  resetButton,
  TO_CATALOGUE,
  TO_PURCHASES,
} from "../shop/texts/buyers.ts";

/**
 * Callback data of every inline button (Telegram allows 64 bytes). Offers carry the price the buyer saw, so a
 * press after a price change is noticed instead of charging the new price silently.
 */
export const data = {
  catalogue: "cat",
  purchases: "my",
  /** «Мои покупки», page `page` (1-based). */
  purchasesPage: (page: number) => `my:${page}`,
  /** «Продлить» under a key: the key's id; whose key it is, is checked on every press. */
  renew: (keyId: number) => `rn:${keyId}`,
  /** «Сбросить привязку» under a key, and its confirmation. */
  /** A renewal's duration at the price the buyer saw; its «Подтвердить»; its promo code prompt and «Подтвердить». */
  renewOffer: (keyId: number, days: number, rub: number) => `rd:${keyId}:${days}:${rub}`,
  renewConfirm: (keyId: number, days: number, rub: number) => `rc:${keyId}:${days}:${rub}`,
  renewPromo: (keyId: number, days: number, rub: number) => `rpc:${keyId}:${days}:${rub}`,
  renewConfirmPromo: (keyId: number, days: number, rub: number, code: string) => `rbp:${keyId}:${days}:${rub}:${code}`,
  reset: (keyId: number) => `hr:${keyId}`,
  resetConfirm: (keyId: number) => `hy:${keyId}`,
  product: (productId: number) => `p:${productId}`,
  offer: (productId: number, days: number, rub: number) => `d:${productId}:${days}:${rub}`,
  confirm: (productId: number, days: number, rub: number) => `buy:${productId}:${days}:${rub}`,
  /** «Ввести промокод» on the confirmation at list price `rub`. */
  promo: (productId: number, days: number, rub: number) => `pc:${productId}:${days}:${rub}`,
  /**
   * «Подтвердить» with a code applied: `rub` is the price after it. The code itself rides along (at most 63 bytes in
   * all) and is checked again on the press, as if typed: a forged one gains nothing and counts as a guess.
   */
  confirmPromo: (productId: number, days: number, rub: number, code: string) =>
    `bp:${productId}:${days}:${rub}:${code}`,
  payTest: (orderId: number) => `pay:${orderId}`,
  /** «Оплатить ⭐»: the invoice in Telegram Stars for this order. */
  starsInvoice: (orderId: number) => `xtr:${orderId}`,
  broadcast: "adm:bc",
  maintenance: (on: boolean) => `adm:mt:${on ? 1 : 0}`,
  broadcastSend: (draft: string) => `bc:go:${draft}`,
  broadcastCancel: (draft: string) => `bc:no:${draft}`,
};

/** Patterns matching the data above; the numbers are bounded so a forged button cannot overflow anything. */
export const pattern = {
  catalogue: /^cat$/,
  purchases: /^my$/,
  purchasesPage: /^my:(\d{1,6})$/,
  renew: /^rn:(\d{1,15})$/,
  renewOffer: /^rd:(\d{1,15}):(\d{1,2}):(\d{1,8})$/,
  renewConfirm: /^rc:(\d{1,15}):(\d{1,2}):(\d{1,8})$/,
  renewPromo: /^rpc:(\d{1,15}):(\d{1,2}):(\d{1,8})$/,
  renewConfirmPromo: /^rbp:(\d{1,15}):(\d{1,2}):(\d{1,8}):([A-Z0-9_-]{3,32})$/,
  reset: /^hr:(\d{1,15})$/,
  resetConfirm: /^hy:(\d{1,15})$/,
  product: /^p:(\d{1,15})$/,
  offer: /^d:(\d{1,15}):(\d{1,2}):(\d{1,8})$/,
  confirm: /^buy:(\d{1,15}):(\d{1,2}):(\d{1,8})$/,
  promo: /^pc:(\d{1,15}):(\d{1,2}):(\d{1,8})$/,
  confirmPromo: /^bp:(\d{1,15}):(\d{1,2}):(\d{1,8}):([A-Z0-9_-]{3,32})$/,
  payTest: /^pay:(\d{1,15})$/,
  starsInvoice: /^xtr:(\d{1,15})$/,
  broadcast: /^adm:bc$/,
  maintenance: /^adm:mt:([01])$/,
  broadcastDraft: /^bc:(go|no):([\w-]{1,24})$/,
  /** Made by the shop (the alerts job sends the alert): shop/keys/sharing.ts. */
  sharingAlert: SHARING_ALERT_PATTERN,
};

/**
 * What a button press means, as the buyer's log records it (the panel shows it in words, with names): the press of
 * a button this bot made, read back from its data. Data of no button of ours (an old keyboard, a forged press) is
 * kept as it came.
 */
export function pressedEvent(pressed: string): PressedEvent {
  for (const [regex, event] of PRESSES) {
    const match = regex.exec(pressed);
    if (match) return event(match.slice(1));
  }
  return { kind: "button", detail: { data: pressed.slice(0, 64) } };
}

type PressedEvent = { kind: string; detail: Record<string, unknown> };

const offer = (kind: string) => (m: string[]) => ({
  kind,
  detail: { productId: Number(m[0]), days: Number(m[1]), rub: Number(m[2]) },
});

const renewalDetail = (m: string[]) => ({ keyId: Number(m[0]), days: Number(m[1]), rub: Number(m[2]) });

const PRESSES: [RegExp, (groups: string[]) => PressedEvent][] = [
  [pattern.catalogue, () => ({ kind: "catalogue", detail: {} })],
  [pattern.purchases, () => ({ kind: "purchases", detail: {} })],
  [pattern.purchasesPage, (m) => ({ kind: "purchases", detail: { page: Number(m[0]) } })],
  [pattern.renew, (m) => ({ kind: "renewal_opened", detail: { keyId: Number(m[0]) } })],
  [pattern.renewOffer, (m) => ({ kind: "renewal_duration_chosen", detail: renewalDetail(m) })],
  [pattern.renewConfirm, (m) => ({ kind: "renewal_confirmed", detail: renewalDetail(m) })],
  [pattern.renewPromo, (m) => ({ kind: "promo_entry", detail: renewalDetail(m) })],
  [pattern.renewConfirmPromo, (m) => ({ kind: "renewal_confirmed", detail: { ...renewalDetail(m), promoCode: m[3] } })],
  [pattern.reset, (m) => ({ kind: "hwid_reset_asked", detail: { keyId: Number(m[0]) } })],
  [pattern.resetConfirm, (m) => ({ kind: "hwid_reset_confirmed", detail: { keyId: Number(m[0]) } })],
  [pattern.product, (m) => ({ kind: "product_viewed", detail: { productId: Number(m[0]) } })],
  [pattern.offer, offer("duration_chosen")],
  [pattern.confirm, offer("purchase_confirmed")],
  [pattern.promo, offer("promo_entry")],
  [pattern.confirmPromo, (m) => ({ kind: "purchase_confirmed", detail: { ...offer("")(m).detail, promoCode: m[3] } })],
  [pattern.payTest, (m) => ({ kind: "test_payment", detail: { orderId: Number(m[0]) } })],
  [pattern.starsInvoice, (m) => ({ kind: "stars_invoice", detail: { orderId: Number(m[0]) } })],
  [pattern.broadcast, () => ({ kind: "broadcast_opened", detail: {} })],
  [pattern.maintenance, (m) => ({ kind: "maintenance_switched", detail: { on: m[0] === "1" } })],
  [pattern.broadcastDraft, (m) => ({ kind: m[0] === "go" ? "broadcast_confirmed" : "broadcast_dropped", detail: {} })],
  [pattern.sharingAlert, (m) => ({ kind: "sharing_alert_pressed", detail: { action: m[0], alertId: Number(m[1]) } })],
];

type Button = TelegramInlineKeyboardButton;
const button = (text: string, callback_data: string): Button => ({ text, callback_data });
const markup = (rows: Button[][]): TelegramInlineKeyboardMarkup => ({ inline_keyboard: rows });

export function catalogueKeyboard(
  products: CatalogueProduct[],
  admin: { maintenance: boolean } | null,
): TelegramInlineKeyboardMarkup {
  const rows = products.map((p) => [button(p.name, data.product(p.id))]);
  rows.push([button(MY_PURCHASES, data.purchases)]);
  if (admin) {
    rows.push([button(BROADCAST_BUTTON, data.broadcast)]);
    rows.push([button(maintenanceButton(admin.maintenance), data.maintenance(!admin.maintenance))]);
  }
  return markup(rows);
}

export function productKeyboard(product: CatalogueProduct): TelegramInlineKeyboardMarkup {
  return markup([
    ...product.offers.map((o) => [button(offerButton(o.days, o.rub), data.offer(product.id, o.days, o.rub))]),
    [button(BACK, data.catalogue)],
  ]);
}

/**
 * The confirmation: «Подтвердить» (with the code, if one is applied), the promo code button, the way back. `listRub`
 * is the duration's price; `applied` the code and the price after it.
 */
export function confirmKeyboard(
  productId: number,
  days: number,
  listRub: number,
  applied?: { code: string; rub: number },
): TelegramInlineKeyboardMarkup {
  const confirm = applied
    ? data.confirmPromo(productId, days, applied.rub, applied.code)
    : data.confirm(productId, days, listRub);
  return markup([
    [button(CONFIRM, confirm)],
    [button(applied ? OTHER_PROMO_BUTTON : PROMO_BUTTON, data.promo(productId, days, listRub))],
    [button(BACK, data.product(productId))],
  ]);
}

/** Under the promo code prompt: back to the confirmation at the price it had. */
export const promoPromptKeyboard = (productId: number, days: number, listRub: number): TelegramInlineKeyboardMarkup =>
  markup([[button(CANCEL, data.offer(productId, days, listRub))]]);

function optionButton(option: PaymentOption): Button {
  switch (option.provider) {
    case "anypay":
      return { text: payButton(option.rub), url: option.url };
    case "telegram_stars":
      return button(payStarsButton(option.stars), data.starsInvoice(option.orderId));
    case "test":
      return button(TEST_PAY, data.payTest(option.orderId));
  }
}

/**
 * One button per way to pay the order, in the checkout's order, then the way back: to the catalogue for a purchase,
 * to «Мои покупки» for a renewal (where the buyer started it).
 */
export function paymentKeyboard(
  options: PaymentOption[],
  back: "catalogue" | "purchases" = "catalogue",
): TelegramInlineKeyboardMarkup {
  const rows: Button[][] = options.map((option) => [optionButton(option)]);
  rows.push([back === "purchases" ? button(TO_PURCHASES, data.purchases) : button(TO_CATALOGUE, data.catalogue)]);
  return markup(rows);
}

export const backToCatalogue = (): TelegramInlineKeyboardMarkup => markup([[button(TO_CATALOGUE, data.catalogue)]]);

export const broadcastDraftKeyboard = (draft: string): TelegramInlineKeyboardMarkup =>
  markup([[button(BROADCAST_SEND, data.broadcastSend(draft)), button(BROADCAST_CANCEL, data.broadcastCancel(draft))]]);

/**
 * Under a page of «Мои покупки»: per key (its entry number `n`) «Продлить» unless banned and «Сбросить привязку»
 * when the buyer may reset it, then the pages, then the catalogue.
 */
export function purchasesKeyboard(
  keys: { n: number; keyId: number; renew: boolean; reset: boolean }[],
  page: { page: number; pages: number },
): TelegramInlineKeyboardMarkup {
  const rows: Button[][] = [];
  for (const k of keys) {
    const row: Button[] = [];
    if (k.renew) row.push(button(renewButton(k.n), data.renew(k.keyId)));
    if (k.reset) row.push(button(resetButton(k.n), data.reset(k.keyId)));
    if (row.length > 0) rows.push(row);
  }
  const nav: Button[] = [];
  if (page.page > 1) nav.push(button(PREVIOUS_PAGE, data.purchasesPage(page.page - 1)));
  if (page.page < page.pages) nav.push(button(NEXT_PAGE, data.purchasesPage(page.page + 1)));
  if (nav.length > 0) rows.push(nav);
  rows.push([button(TO_CATALOGUE, data.catalogue)]);
  return markup(rows);
}

export const resetConfirmKeyboard = (keyId: number): TelegramInlineKeyboardMarkup =>
  markup([[button(RESET_CONFIRM, data.resetConfirm(keyId))], [button(TO_PURCHASES, data.purchases)]]);

export const backToPurchases = (): TelegramInlineKeyboardMarkup => markup([[button(TO_PURCHASES, data.purchases)]]);

/** The durations a key can be renewed for, as `{N дней} • {price}₽`, and the way back to «Мои покупки». */
export function renewalKeyboard(keyId: number, offers: { days: number; rub: number }[]): TelegramInlineKeyboardMarkup {
  return markup([
    ...offers.map((o) => [button(offerButton(o.days, o.rub), data.renewOffer(keyId, o.days, o.rub))]),
    [button(TO_PURCHASES, data.purchases)],
  ]);
}

/** A renewal's confirmation, as confirmKeyboard is a purchase's; back goes to the key's durations. */
export function renewConfirmKeyboard(
  keyId: number,
  days: number,
  listRub: number,
  applied?: { code: string; rub: number },
): TelegramInlineKeyboardMarkup {
  const confirm = applied
    ? data.renewConfirmPromo(keyId, days, applied.rub, applied.code)
    : data.renewConfirm(keyId, days, listRub);
  return markup([
    [button(CONFIRM, confirm)],
    [button(applied ? OTHER_PROMO_BUTTON : PROMO_BUTTON, data.renewPromo(keyId, days, listRub))],
    [button(BACK, data.renew(keyId))],
  ]);
}

/** Under the promo code prompt: back to the confirmation (a purchase's or a renewal's) at the price it had. */
export const promoPromptKeyboardFor = (entry: {
  productId: number;
  days: number;
  rub: number;
  keyId?: number;
}): TelegramInlineKeyboardMarkup =>
  entry.keyId === undefined
    ? promoPromptKeyboard(entry.productId, entry.days, entry.rub)
    : markup([[button(CANCEL, data.renewOffer(entry.keyId, entry.days, entry.rub))]]);
