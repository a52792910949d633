import { createTelegramMessenger } from "../../src/bot/messenger.ts";
import { type BotRuntime, createBotRuntime } from "../../src/bot/runtime.ts";
import type { Config } from "../../src/config.ts";
import { type Checkout, createCheckout } from "../../src/payments/checkout.ts";
import type { Shop } from "../../src/shop/index.ts";
import { FakeTelegram, type RecordedCall, TEST_TOKEN, type TgUser } from "./fake-telegram.ts";
import { createTestShop, type TestShop } from "./shop.ts";

const SENDS = new Set(["sendMessage", "editMessageText", "sendDocument"]);

export type TestBot = TestShop & {
  tg: FakeTelegram;
  runtime: BotRuntime;
  /** Calls of checkout.payTest the bot made, and what the next one answers. */
  payTests: { orderId: number; adminId: number }[];
  payTestAnswer: { ok: true } | { ok: false; reason: string };
  /** A user writes to the bot; resolves with the bot's next message to them. */
  say(user: TgUser, text: string): Promise<RecordedCall>;
  /**
   * A user presses a button under one of the bot's messages; resolves with the answerCallbackQuery and, unless
   * `screen: false`, the message the bot showed next (edited or sent).
   */
  press(
    user: TgUser,
    data: string,
    under: RecordedCall,
    options?: { screen?: boolean },
  ): Promise<{ answer: RecordedCall; screen: RecordedCall | null }>;
  stop(): Promise<void>;
};

export const buyer = (id: number, name = `Buyer ${id}`): TgUser => ({
  id,
  first_name: name,
  username: `buyer${id}`,
  language_code: "ru",
});

/** The message id of a bot message, whether it was sent (the fake's answer) or edited (the request). */
export function messageIdOf(call: RecordedCall): number {
  if (call.method === "editMessageText") return Number(call.params.message_id);
  return Number((call.result as { message_id: number }).message_id);
}

/** Button texts of a message's inline keyboard, row by row flattened. */
export function buttonsOf(call: RecordedCall): { text: string; callback_data?: string; url?: string }[] {
  const markup = call.params.reply_markup as
    | { inline_keyboard?: { text: string; callback_data?: string; url?: string }[][] }
    | undefined;
  return markup?.inline_keyboard?.flat() ?? [];
}

export function buttonData(call: RecordedCall, text: string): string {
  const button = buttonsOf(call).find((b) => b.text === text);
  if (!button?.callback_data) {
    throw new Error(
      `no button «${text}» in: ${buttonsOf(call)
        .map((b) => b.text)
        .join(" | ")}`,
    );
  }
  return button.callback_data;
}

/**
 * The shop with its real bot long-polling a fake Bot API server: the bot is on, AnyPay is configured, and the
 * checkout's payTest records its calls.
 */
export async function startTestBot(
  options: { config?: Partial<Config>; updatesPerMinute?: number; settings?: boolean } = {},
): Promise<TestBot> {
  const tg = new FakeTelegram([TEST_TOKEN]).start();
  const t = await createTestShop({ telegramApiUrl: tg.url, ...options.config });
  if (options.settings !== false) {
    await t.shop.settings.update({
      botToken: TEST_TOKEN,
      botEnabled: true,
      anypayMerchantId: "12345",
      anypaySecretKey: "anypay-secret",
    });
  }
  const payTests: { orderId: number; adminId: number }[] = [];
  const testBot = { payTestAnswer: { ok: true } as TestBot["payTestAnswer"] };
  // The real checkout, but its test payment only records what the bot asked and answers what the test says.
  const checkout: Checkout = {
    ...checkoutOf(t.shop, t.config),
    payTest: async (orderId, adminId) => {
      payTests.push({ orderId, adminId });
      return testBot.payTestAnswer;
    },
  };
  const runtime = createBotRuntime({
    shop: t.shop,
    checkout,
    config: t.config,
    pollTimeoutS: 1,
    leaseMs: 900,
    ...(options.updatesPerMinute === undefined ? {} : { updatesPerMinute: options.updatesPerMinute }),
  });
  await runtime.start();
  if (options.settings !== false) {
    await waitUntil(() => ["polling", "webhook"].includes(runtime.status().state), "the bot to receive updates");
  }

  async function say(user: TgUser, text: string): Promise<RecordedCall> {
    const from = tg.calls.length;
    tg.sendText(TEST_TOKEN, user, text);
    return await tg.waitFor((calls) =>
      calls.slice(from).find((c) => SENDS.has(c.method) && Number(c.params.chat_id) === user.id),
    );
  }

  async function press(user: TgUser, data: string, under: RecordedCall, pressOptions: { screen?: boolean } = {}) {
    const from = tg.calls.length;
    tg.pressButton(TEST_TOKEN, user, data, { message_id: messageIdOf(under), text: String(under.params.text ?? "") });
    const answer = await tg.waitFor((calls) => calls.slice(from).find((c) => c.method === "answerCallbackQuery"));
    if (pressOptions.screen === false) return { answer, screen: null };
    const screen = await tg.waitFor((calls) =>
      calls.slice(from).find((c) => SENDS.has(c.method) && Number(c.params.chat_id) === user.id),
    );
    return { answer, screen };
  }

  return Object.assign(testBot, {
    ...t,
    tg,
    runtime,
    payTests,
    say,
    press,
    async stop() {
      await runtime.stop();
      await tg.stop();
      await t.close();
    },
  });
}

/** The checkout as production wires it, telling the admins through the Bot API that `config` points at. */
export function checkoutOf(shop: Shop, config: Config): Checkout {
  const messenger = createTelegramMessenger({
    telegramApiUrl: config.telegramApiUrl,
    token: async () => (await shop.settings.get()).botToken,
  });
  return createCheckout({ shop, messenger, config });
}

/** Polls the predicate (every 10 ms, or `everyMs` for costlier checks such as a database query). */
export async function waitUntil(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
  everyMs = 10,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}
