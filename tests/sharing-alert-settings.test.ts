import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { eventually } from "./helpers/licence.ts";
import { PanelClient } from "./helpers/panel-client.ts";
import { cleanEnv, runToEnd } from "./helpers/process.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database and starting CLI processes can take seconds on a loaded machine.
setDefaultTimeout(30_000);

/** The sharing alert's two thresholds (docs/panel.md#sharing-alerts), as settings:set and «Лимиты и пороги» set them. */

let t: TestShop;
let c: PanelClient;

beforeAll(async () => {
  t = await createTestShop();
  const { password } = await t.shop.accounts.reset("admin");
  c = new PanelClient(t);
  await c.login("admin", password);
});
afterAll(async () => {
  await t.close();
});

function cli(args: string[]) {
  const env = cleanEnv({
    DATABASE_URL: t.databaseUrl,
    REDIS_URL: t.redisUrl,
    REDIS_PREFIX: t.redisPrefix,
    DATA_DIR: t.config.dataDir,
  });
  return runToEnd(["bun", "src/cli.ts", ...args], env);
}

const thresholds = async () => {
  const s = await t.shop.settings.load();
  return { uuids: s.sharingAlertUuids, hours: s.sharingAlertHours };
};

describe("the sharing alert's thresholds", () => {
  test("a fresh shop alerts at 3 foreign PCs within 24 hours", async () => {
    expect(await thresholds()).toEqual({ uuids: 3, hours: 24 });
  });

  test("settings:set sets each, prints it, and a running app hears of it at once", async () => {
    await t.shop.settings.get();
    expect(await cli(["settings:set", "sharing_alert_uuids", "5"])).toEqual({
      code: 0,
      out: "sharing_alert_uuids: 5\n",
      err: "",
    });
    await eventually(async () => (await t.shop.settings.get()).sharingAlertUuids === 5, 5_000);
    expect(await cli(["settings:set", "sharing_alert_hours", "48"])).toMatchObject({
      code: 0,
      out: "sharing_alert_hours: 48\n",
    });
    expect(await thresholds()).toEqual({ uuids: 5, hours: 48 });
  });

  test("settings:set refuses a value out of range with the range, and nothing changes", async () => {
    const before = await thresholds();
    const cases: [string[], RegExp][] = [
      [
        ["settings:set", "sharing_alert_uuids", "0"],
        /^error: sharing_alert_uuids must be a whole number from 1 to 50, got "0"$/m,
      ],
      [
        ["settings:set", "sharing_alert_uuids", "51"],
        /^error: sharing_alert_uuids must be a whole number from 1 to 50/m,
      ],
      [
        ["settings:set", "sharing_alert_hours", "721"],
        /^error: sharing_alert_hours must be a whole number from 1 to 720/m,
      ],
      [["settings:set", "sharing_alert_hours", "2.5"], /^error: sharing_alert_hours must be a whole number/m],
    ];
    for (const [args, pattern] of cases) {
      const r = await cli(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.err).toMatch(pattern);
    }
    expect(await thresholds()).toEqual(before);
  });

  test("«Лимиты и пороги» shows and saves both; a value out of range is refused under its field", async () => {
    await t.shop.settings.update({ sharingAlertUuids: 3, sharingAlertHours: 24 });
    const page = await c.page("/settings");
    expect(page.html).toContain("Оповещение о передаче ключа: чужих ПК");
    expect(page.html).toMatch(/name="sharing_alert_uuids"[^>]*value="3"/);
    expect(page.html).toMatch(/name="sharing_alert_hours"[^>]*value="24"/);

    const bad = await c.post(
      "/settings/numbers",
      { sharing_alert_uuids: "0", sharing_alert_hours: "24" },
      { htmx: true },
    );
    expect(bad.status).toBe(422);
    const html = await bad.text();
    expect(html).toContain('id="e-sharing_alert_uuids"');
    expect(html).toContain("Целое число от 1 до 50");
    expect(await thresholds()).toEqual({ uuids: 3, hours: 24 });

    const ok = await c.post(
      "/settings/numbers",
      { sharing_alert_uuids: "4", sharing_alert_hours: "12" },
      { htmx: true },
    );
    expect(ok.status).toBe(200);
    expect(await thresholds()).toEqual({ uuids: 4, hours: 12 });
  });
});
