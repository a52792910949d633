import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { createTelegramMessenger } from "../src/bot/messenger.ts";
import { MessengerError } from "../src/shop/messenger.ts";
import { FakeTelegram, TEST_TOKEN } from "./helpers/fake-telegram.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

let tg: FakeTelegram;
beforeAll(() => {
  tg = new FakeTelegram([TEST_TOKEN]).start();
});
afterAll(async () => {
  await tg.stop();
});

test("the messenger uploads a zip once and reuses Telegram's file_id after", async () => {
  const messenger = createTelegramMessenger({ telegramApiUrl: tg.url, token: async () => TEST_TOKEN });
  const path = `/tmp/mph-messenger-${process.pid}.zip`;
  await Bun.write(path, new Uint8Array([0x50, 0x4b, 0x03, 0x04, 1, 2, 3]));
  const first = await messenger.sendDocument(42, { path, filename: "build.zip" }, "Ключ: X");
  expect(first.fileId).toStartWith("doc_");
  const upload = tg.callsOf("sendDocument", 42)[0]!;
  expect(upload.files.document?.name).toBe("build.zip");
  expect(upload.files.document?.size).toBe(7);
  expect(upload.params.caption).toBe("Ключ: X");
  await messenger.sendDocument(42, { fileId: first.fileId }, "again");
  expect(tg.callsOf("sendDocument", 42)[1]!.params.document).toBe(first.fileId!);
});

test("403 from Telegram becomes a 'blocked' error and 429 carries retry_after", async () => {
  const messenger = createTelegramMessenger({ telegramApiUrl: tg.url, token: async () => TEST_TOKEN });
  const off = tg.onCall((c) =>
    Number(c.params.chat_id) === 7
      ? { code: 403, description: "Forbidden: bot was blocked by the user" }
      : Number(c.params.chat_id) === 8
        ? { code: 429, description: "Too Many Requests: retry after 3", retryAfter: 3 }
        : undefined,
  );
  const blocked = await messenger.sendText(7, "hi").catch((e: unknown) => e);
  expect(blocked).toBeInstanceOf(MessengerError);
  expect((blocked as MessengerError).kind).toBe("blocked");
  const limited = (await messenger.sendText(8, "hi").catch((e: unknown) => e)) as MessengerError;
  expect(limited.kind).toBe("rate_limited");
  expect(limited.retryAfterS).toBe(3);
  off();
});

test("without a token the messenger says it is not configured", async () => {
  const messenger = createTelegramMessenger({ telegramApiUrl: tg.url, token: async () => null });
  const error = (await messenger.sendText(1, "x").catch((e: unknown) => e)) as MessengerError;
  expect(error.kind).toBe("not_configured");
});

test("a signal abandons a send in flight: the request is closed, not left to complete later", async () => {
  const messenger = createTelegramMessenger({ telegramApiUrl: tg.url, token: async () => TEST_TOKEN });
  const off = tg.delayAnswers((c) => (Number(c.params.chat_id) === 9 ? 2_000 : undefined));
  try {
    const path = `/tmp/mph-messenger-slow-${process.pid}.zip`;
    await Bun.write(path, new Uint8Array([0x50, 0x4b, 0x03, 0x04, 9]));
    const started = performance.now();
    const error = await messenger
      .sendDocument(9, { path, filename: "build.zip" }, "Ключ: slow", { signal: AbortSignal.timeout(150) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MessengerError);
    expect((error as MessengerError).kind).toBe("failed");
    expect(performance.now() - started).toBeLessThan(1_500);
    await tg.waitFor((calls) => calls.find((c) => Number(c.params.chat_id) === 9 && c.aborted));
    expect(tg.callsOf("sendDocument", 9).filter((c) => c.result !== undefined)).toHaveLength(0);
    // Without a signal the same messenger still sends (its shared client is not affected).
    await messenger.sendText(10, "fine");
    expect(tg.callsOf("sendMessage", 10)).toHaveLength(1);
  } finally {
    off();
  }
});
