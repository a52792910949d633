import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import type { Sql } from "../src/db/client.ts";
import { createSettings } from "../src/shop/settings/settings.ts";
import { createAdmins } from "../src/shop/users/admins.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

/**
 * A process re-reads settings and admins on every announcement and every 20 s (followChanges). A read that started
 * before a change made in this same process, and answers after it, must not put the old values back.
 */

// Hang protection only: cloning a database can take seconds on a loaded CI machine.
setDefaultTimeout(30_000);

let t: TestShop;
beforeAll(async () => {
  t = await createTestShop();
});
afterAll(async () => {
  await t.close();
});

/** The shop's sql, except that the first query containing `match` holds its (real) answer until `open()`. */
function holdFirst(match: string) {
  const real = t.sql as unknown as (strings: TemplateStringsArray, ...values: unknown[]) => PromiseLike<unknown>;
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let arrived: () => void = () => {};
  const answered = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  let armed = true;
  const sql = (strings: TemplateStringsArray, ...values: unknown[]) => {
    const query = real(strings, ...values);
    if (!armed || !strings.join("?").includes(match)) return query;
    armed = false;
    return Promise.resolve(query).then(async (rows) => {
      arrived();
      await gate;
      return rows;
    });
  };
  return { sql: sql as unknown as Sql, answered, open: () => release() };
}

test("a settings read answered after this process saved a change does not bring the old values back", async () => {
  const held = holdFirst("from settings");
  const settings = createSettings({ ...t.shop.deps, sql: held.sql });
  const seen: boolean[] = [];
  settings.onChange((s) => seen.push(s.maintenance));
  // The periodic reload reads the row, and its answer is slow to come back…
  const reading = settings.load();
  await held.answered;
  // …while the owner switches maintenance on in this process.
  const saving = settings.update({ maintenance: true });
  await Promise.race([saving, Bun.sleep(200)]);
  held.open();
  await Promise.all([reading, saving]);
  expect((await settings.get()).maintenance).toBe(true);
  // Nobody was told that maintenance went off again.
  expect(seen.at(-1)).toBe(true);
  expect(seen).not.toContain(false);
  await settings.update({ maintenance: false });
});

test("an admin list read answered after this process added an admin does not drop the new admin", async () => {
  const held = holdFirst("from bot_admins");
  const admins = createAdmins({ ...t.shop.deps, sql: held.sql });
  const reading = admins.reload();
  await held.answered;
  const adding = admins.add(777_001);
  await Promise.race([adding, Bun.sleep(200)]);
  held.open();
  await Promise.all([reading, adding]);
  expect(await admins.isAdmin(777_001)).toBe(true);
});
