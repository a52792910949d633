import { Composer } from "gramio";
import { log } from "../../lib/log.ts";
import type { StarsAnswer, StarsNotice } from "../../payments/telegram-stars.ts";
import { isUnavailable } from "../../shop/errors.ts";
import { STARS_CHECK_FAILED } from "../../shop/texts/buyers.ts";
import { pattern } from "../keyboards.ts";
import { markRetryLater } from "../outcome.ts";
import { answer, type BotDeps } from "../screen.ts";

/** A payment Telegram has taken is settled even if the database blinks: tried again this often, this far apart. */
const PAID_ATTEMPTS = 5;
const PAID_BACKOFF_MS = 500;

/**
 * Telegram Stars, where the money is: pre_checkout_query (ok only while the order can be paid at that amount by that
 * buyer; Telegram waits at most 10 s for the answer) and successful_payment. Runs before the gatekeeping: a payment
 * is answered and settled whatever the bot's switches, maintenance or the buyer's flood limit — the buyer was let
 * through to the invoice, and once Telegram has taken the Stars, dropping the update would lose them.
 */
export function starsPayments(deps: BotDeps) {
  const { checkout } = deps;

  /**
   * Settles a payment, trying again while the shop cannot (the Stars are taken already). Null when the database
   * stays away longer than the quick attempts: the update is then kept and Telegram delivers it again (the poller's
   * offset stays, a webhook gets 503), as often as it takes — settling is once per charge id, so a repeat is safe.
   */
  async function settle(notice: Extract<StarsNotice, { kind: "paid" }>): Promise<StarsAnswer | null> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await checkout.stars.receive(notice);
      } catch (error) {
        if (attempt >= PAID_ATTEMPTS) {
          // Only an outage is waited out: a bug would fail every time, and must not hold the bot's updates forever.
          if (isUnavailable(error) && markRetryLater()) {
            log.warn("a stars payment could not be settled: the database is away; Telegram delivers it again", {
              chargeId: notice.chargeId,
              error: (error as Error).message,
            });
            return null;
          }
          log.error("a stars payment could not be settled: settle it by hand from this line", {
            ...notice,
            error: (error as Error).message,
          });
          throw error;
        }
        log.warn("a stars payment could not be settled yet; trying again", {
          chargeId: notice.chargeId,
          attempt,
          error: (error as Error).message,
        });
        await Bun.sleep(PAID_BACKOFF_MS * 2 ** (attempt - 1));
      }
    }
  }

  return (
    new Composer({ name: "stars-payments" })
      .on("pre_checkout_query", async (ctx) => {
        const q = ctx.payload;
        let verdict: StarsAnswer;
        try {
          verdict = await checkout.stars.receive({
            kind: "pre_checkout",
            userId: q.from.id,
            currency: q.currency,
            totalAmount: q.total_amount,
            payload: q.invoice_payload,
          });
        } catch (error) {
          // Without an answer Telegram refuses the payment anyway, after a wait: refuse it now, with a reason.
          log.error("stars pre-checkout failed", { error: (error as Error).message });
          verdict = { ok: false, reason: STARS_CHECK_FAILED };
        }
        await ctx.bot.api.answerPreCheckoutQuery({
          pre_checkout_query_id: q.id,
          ok: verdict.ok,
          ...(verdict.ok ? {} : { error_message: verdict.reason }),
        });
      })
      // GramIO hands a message with successful_payment to this event, not to "message".
      .on("successful_payment", async (ctx) => {
        const payment = ctx.payload.successful_payment;
        const from = ctx.payload.from;
        if (!payment || !from) return;
        const verdict = await settle({
          kind: "paid",
          userId: from.id,
          currency: payment.currency,
          totalAmount: payment.total_amount,
          payload: payment.invoice_payload,
          chargeId: payment.telegram_payment_charge_id,
        });
        if (verdict?.ok && verdict.text)
          await ctx.bot.api.sendMessage({ chat_id: ctx.payload.chat.id, text: verdict.text });
      })
  );
}

/** «Оплатить ⭐» on the payment step: the invoice in Stars for the order, sent into the chat (sendInvoice). */
export function starsInvoices(deps: BotDeps) {
  const { checkout } = deps;
  return new Composer({ name: "stars-invoices" }).callbackQuery(pattern.starsInvoice, async (ctx) => {
    const api = ctx.bot.api;
    const result = await checkout.stars.invoice(ctx.payload.from.id, Number(ctx.queryData[1]));
    if (!result.ok) {
      await answer(api, ctx.payload.id, result.reason, { alert: true });
      return;
    }
    await answer(api, ctx.payload.id);
    const { invoice } = result;
    await api.sendInvoice({
      chat_id: ctx.payload.message?.chat.id ?? ctx.payload.from.id,
      title: invoice.title,
      description: invoice.description,
      payload: invoice.payload,
      provider_token: invoice.providerToken,
      currency: invoice.currency,
      prices: invoice.prices,
    });
  });
}
