import { afterAll, beforeAll, expect, test } from "bun:test";
import { LOCKS, sessionLock } from "../src/db/session-lock.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

let t: TestShop;
beforeAll(async () => {
  t = await createTestShop();
});
afterAll(async () => {
  await t.close();
});

test("one holder at a time; a released lock passes on and is never taken again by the one that let it go", async () => {
  const a = sessionLock(t.sql, t.databaseUrl, LOCKS.broadcastSender, { idleCutoffMs: 10_000 });
  const b = sessionLock(t.sql, t.databaseUrl, LOCKS.broadcastSender, { idleCutoffMs: 10_000 });
  expect(await a.hold()).toBe(true);
  expect(await a.hold()).toBe(true);
  expect(await b.hold()).toBe(false);
  // A hold() that races the stop — its caller was awaiting something else — must not take it on a new connection.
  const late = a.release().then(() => a.hold());
  expect(await late).toBe(false);
  expect(await b.hold()).toBe(true);
  expect(await a.hold()).toBe(false);
  await b.release();
});
