/**
 * The buyer's own HWID reset (docs/panel.md#the-bot-for-buyers), through the real bot polling the fake Bot API and
 * the real licence API: «Сбросить привязку» in «Мои покупки», its confirmation, the cooldown from the settings, and
 * presses that are stale or forged.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { moscowDateTime } from "../src/shop/texts/buyers.ts";
import { buttonData, buttonsOf, buyer, messageIdOf, startTestBot, type TestBot } from "./helpers/bot.ts";
import { type RecordedCall, TEST_TOKEN, type TgUser } from "./helpers/fake-telegram.ts";
import { auth } from "./helpers/licence.ts";

setDefaultTimeout(30_000);

let bot: TestBot;
let productId: number;
const PRODUCT = "Stalcraft";

beforeAll(async () => {
  bot = await startTestBot();
  const product = await bot.shop.products.create({ name: PRODUCT });
  productId = product.id;
  await bot.shop.products.setPrice(productId, 30, 1999);
  await bot.shop.keys.generate(productId, 30, 10);
});

afterAll(async () => {
  await bot.stop();
});

/** A key given to `user` and activated by their loader on `pc`. */
async function activatedKey(user: TgUser, pc: string) {
  const issued = await bot.shop.keys.issue(productId, 30, user.id);
  expect((await auth(bot, PRODUCT, { key: issued.key, uuid: pc })).status).toBe(200);
  return (await bot.shop.keys.byId(issued.id))!;
}

async function purchasesOf(user: TgUser): Promise<RecordedCall> {
  return await bot.say(user, "/purchases");
}

const hwidOf = async (keyId: number) => (await bot.shop.keys.byId(keyId))!.hwid;

test("a buyer resets the binding: confirmation, the new PC binds, the old one is refused, the expiry stays", async () => {
  const dave = buyer(3001, "Dave");
  const key = await activatedKey(dave, "OLD-PC");
  const expiresAt = key.expiresAt!;

  const list = await purchasesOf(dave);
  expect(buttonsOf(list).map((b) => b.text)).toEqual(["🔄 Продлить №1", "💻 Сбросить привязку №1", "« В каталог"]);
  const ask = (await bot.press(dave, buttonData(list, "💻 Сбросить привязку №1"), list)).screen!;
  expect(ask.method).toBe("editMessageText");
  expect(String(ask.params.text)).toBe(
    [
      "Сбросить привязку ключа к компьютеру?",
      `Ключ: ${key.key}\nТовар: ${PRODUCT} 30 дней`,
      `После сброса ключ привяжется к первому компьютеру, на котором запустят программу. Срок действия не изменится: до ${moscowDateTime(expiresAt)}.`,
      "Сбрасывать привязку можно не чаще раза в 7 дней.",
    ].join("\n\n"),
  );
  // Nothing happens before the confirmation.
  expect(await hwidOf(key.id)).toBe("OLD-PC");

  const done = (await bot.press(dave, buttonData(ask, "Сбросить привязку"), ask)).screen!;
  const [stamp] = await bot.sql<{ buyer_reset_at: Date }[]>`select buyer_reset_at from keys where id = ${key.id}`;
  const nextAt = new Date(stamp!.buyer_reset_at.getTime() + 7 * 86_400_000);
  expect(String(done.params.text)).toBe(
    [
      "Привязка сброшена.",
      `Ключ: ${key.key}`,
      `Запустите программу на новом компьютере — ключ привяжется к нему. Срок действия прежний: до ${moscowDateTime(expiresAt)}.`,
      `Следующий сброс — не раньше ${moscowDateTime(nextAt)}.`,
    ].join("\n\n"),
  );
  expect(await hwidOf(key.id)).toBeNull();

  // The licence API obeys at once: the new PC binds without a day more, the old one is refused.
  const fresh = await auth(bot, PRODUCT, { key: key.key, uuid: "NEW-PC" });
  expect(fresh.status).toBe(200);
  expect(fresh.body.expires_at).toBe(expiresAt.toISOString());
  expect(await auth(bot, PRODUCT, { key: key.key, uuid: "OLD-PC" })).toMatchObject({
    status: 403,
    body: { message: "HWID mismatch" },
  });
  expect((await bot.shop.keys.byId(key.id))!.expiresAt!.toISOString()).toBe(expiresAt.toISOString());

  // On the key's timeline (by the buyer) and in the buyer's log.
  const events = await bot.sql<{ kind: string; actor: string; details: { uuid: string } }[]>`
    select kind, actor, details from key_events where key_id = ${key.id} and kind = 'hwid_reset'`;
  expect([...events]).toEqual([{ kind: "hwid_reset", actor: `buyer:${dave.id}`, details: { uuid: "OLD-PC" } }]);
  const log = await bot.sql<{ detail: { keyId: number } }[]>`
    select detail from user_events where user_id = ${dave.id} and kind = 'hwid_reset'`;
  expect(log.map((e) => e.detail.keyId)).toEqual([key.id]);

  // A second reset inside the cooldown is refused, saying when it becomes possible; nothing changes.
  const refusal = `Привязку можно сбрасывать раз в 7 дней. Следующий сброс возможен с ${moscowDateTime(nextAt)}.`;
  const again = await purchasesOf(dave);
  const refused = await bot.press(dave, buttonData(again, "💻 Сбросить привязку №1"), again);
  expect(refused.answer.params).toMatchObject({ text: refusal, show_alert: true });
  // The old confirmation pressed again (or twice at once) is refused the same way, under the key's lock.
  const stale = await bot.press(dave, buttonData(ask, "Сбросить привязку"), ask);
  expect(stale.answer.params).toMatchObject({ text: refusal, show_alert: true });
  expect(String(stale.screen!.params.text)).toStartWith("Мои покупки:");
  expect(await hwidOf(key.id)).toBe("NEW-PC");
  const resets = await bot.sql`select 1 from key_events where key_id = ${key.id} and kind = 'hwid_reset'`;
  expect(resets.length).toBe(1);

  // Once the cooldown has passed, the buyer may reset again.
  await bot.sql`update keys set buyer_reset_at = now() - interval '7 days 1 minute' where id = ${key.id}`;
  const later = await purchasesOf(dave);
  const ask2 = (await bot.press(dave, buttonData(later, "💻 Сбросить привязку №1"), later)).screen!;
  const done2 = (await bot.press(dave, buttonData(ask2, "Сбросить привязку"), ask2)).screen!;
  expect(String(done2.params.text)).toStartWith("Привязка сброшена.");
  expect(await hwidOf(key.id)).toBeNull();
});

test("two presses of the confirmation at once reset once; the other hears the cooldown", async () => {
  const gina = buyer(3002, "Gina");
  const key = await activatedKey(gina, "PC-1");
  const list = await purchasesOf(gina);
  const ask = (await bot.press(gina, buttonData(list, "💻 Сбросить привязку №1"), list)).screen!;
  const data = buttonData(ask, "Сбросить привязку");
  const from = bot.tg.calls.length;
  for (let i = 0; i < 2; i++) bot.tg.pressButton(TEST_TOKEN, gina, data, { message_id: messageIdOf(ask) });
  const answers = await bot.tg.waitFor((calls) => {
    const answered = calls.slice(from).filter((c) => c.method === "answerCallbackQuery");
    return answered.length === 2 ? answered : undefined;
  });
  const notices = answers.map((a) => (a.params.text as string | undefined) ?? null);
  expect(notices.filter((n) => n === null).length).toBe(1);
  expect(notices.find((n) => n !== null)).toStartWith("Привязку можно сбрасывать раз в 7 дней.");

  // And the shop asked three times at the same moment (two app processes, two devices): one reset, under the lock.
  const raced = await activatedKey(gina, "PC-2");
  const results = await Promise.all([1, 2, 3].map(() => bot.shop.buyerKeys.resetHwid(gina.id, raced.id)));
  expect(results.map((r) => r.kind).sort()).toEqual(["cooldown", "cooldown", "reset"]);
  const racedResets = await bot.sql`select 1 from key_events where key_id = ${raced.id} and kind = 'hwid_reset'`;
  expect(racedResets.length).toBe(1);
  const resets = await bot.sql`select 1 from key_events where key_id = ${key.id} and kind = 'hwid_reset'`;
  expect(resets.length).toBe(1);
});

test("cooldown 0 hides the button, and an old confirmation then changes nothing", async () => {
  const hank = buyer(3003, "Hank");
  const key = await activatedKey(hank, "PC-H");
  const list = await purchasesOf(hank);
  const ask = (await bot.press(hank, buttonData(list, "💻 Сбросить привязку №1"), list)).screen!;

  await bot.shop.settings.update({ hwidResetCooldownDays: 0 });
  try {
    const hidden = await purchasesOf(hank);
    expect(buttonsOf(hidden).map((b) => b.text)).toEqual(["🔄 Продлить №1", "« В каталог"]);
    const old = await bot.press(hank, buttonData(ask, "Сбросить привязку"), ask);
    expect(old.answer.params.text).toBe(
      "Сброс привязки сейчас недоступен. Если сменили компьютер, напишите администратору.",
    );
    expect(await hwidOf(key.id)).toBe("PC-H");
  } finally {
    await bot.shop.settings.update({ hwidResetCooldownDays: 7 });
  }
});

test("a key bound to no PC (the admin reset it) says so at the first press, before any confirmation", async () => {
  const olga = buyer(3006, "Olga");
  const key = await activatedKey(olga, "OLGA-PC");
  await bot.shop.keys.resetHwid({ id: key.id }, "panel:owner");
  const list = await purchasesOf(olga);
  const pressed = await bot.press(olga, buttonData(list, "💻 Сбросить привязку №1"), list);
  expect(pressed.answer.params).toMatchObject({
    text: "Ключ сейчас не привязан ни к одному компьютеру: он привяжется к первому, на котором запустят программу.",
    show_alert: true,
  });
  // Not asked to confirm a reset that would do nothing: the list again.
  expect(String(pressed.screen!.params.text)).toStartWith("Мои покупки:");
});

test("nobody resets a key that is not theirs, whatever they forge; a key banned meanwhile is refused", async () => {
  const ivan = buyer(3004, "Ivan");
  const eve = buyer(3005, "Eve");
  const key = await activatedKey(ivan, "IVAN-PC");
  const list = await purchasesOf(ivan);
  const ask = (await bot.press(ivan, buttonData(list, "💻 Сбросить привязку №1"), list)).screen!;

  // Eve forges both buttons for Ivan's key: a notice, her own (empty) list, and Ivan's key untouched.
  const evesChat = await purchasesOf(eve);
  for (const data of [`hr:${key.id}`, `hy:${key.id}`]) {
    const forged = await bot.press(eve, data, evesChat);
    expect(forged.answer.params.text).toBe("Эта кнопка устарела.");
    expect(forged.screen!.params.text).toBe("У вас пока нет покупок.");
  }
  expect(await hwidOf(key.id)).toBe("IVAN-PC");
  const none = await bot.sql`select 1 from key_events where key_id = ${key.id} and kind = 'hwid_reset'`;
  expect(none.length).toBe(0);

  // Banned between the list and the press: refused with the reason, and the fresh list has no buttons for it.
  await bot.shop.keys.setBanned({ id: key.id }, true);
  const banned = await bot.press(ivan, buttonData(ask, "Сбросить привязку"), ask);
  expect(banned.answer.params.text).toBe(
    "Этот ключ заблокирован: продлить его или сбросить привязку нельзя. Если это ошибка, напишите администратору.",
  );
  expect(String(banned.screen!.params.text)).toContain("Статус: заблокирован");
  expect(buttonsOf(banned.screen!).map((b) => b.text)).toEqual(["« В каталог"]);
  expect(await hwidOf(key.id)).toBe("IVAN-PC");
});
