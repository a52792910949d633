import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { PanelClient } from "./helpers/panel-client.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

let t: TestShop;
let owner: PanelClient;

beforeAll(async () => {
  t = await createTestShop();
  const account = await t.shop.accounts.reset("owner");
  owner = new PanelClient(t);
  expect((await owner.login("owner", account.password)).status).toBeLessThan(400);
  // The settings tab carries the session's CSRF token, which htmx sends with every request of the panel.
  await owner.page("/settings");
  await t.sql`
    insert into bot_users (telegram_id, first_name) select g, 'User' from generate_series(1, 12) g`;
  await t.sql`update bot_users set blocked_at = now() where telegram_id = 12`;
});

afterAll(async () => {
  await t.close();
});

async function call(path: string) {
  const res = await owner.get(`/broadcasts${path}`, { htmx: "partial" });
  return { status: res.status, html: await res.text(), headers: res.headers };
}

async function post(path: string, fields: Record<string, string>, options: { csrf?: boolean } = {}) {
  const res = await owner.post(`/broadcasts${path}`, fields, { htmx: true, ...options });
  return { status: res.status, html: await res.text(), headers: res.headers };
}

test("without a panel session the broadcast routes send to the login page; a POST without the CSRF token is refused", async () => {
  const anonymous = await t.request("/broadcasts");
  expect(anonymous.status).toBe(303);
  expect(anonymous.headers.get("location")).toStartWith("/Morpheus%20Private/");
  const stranger = await new PanelClient(t).post("/broadcasts", { text: "x" }, { htmx: true });
  // htmx is told to load the login page instead of swapping anything.
  expect(stranger.headers.get("hx-redirect")).toBe("/Morpheus%20Private/");
  expect((await post("", { text: "x" }, { csrf: false })).status).toBe(403);
  expect((await t.shop.broadcasts.recent()).length).toBe(0);
});

test("the form shows who will receive it; the preview shows the text escaped; sending starts a live progress bar", async () => {
  const section = await call("");
  expect(section.status).toBe(200);
  expect(section.headers.get("content-type")).toContain("text/html");
  expect(section.html).toContain('hx-post="/Morpheus%20Private/broadcasts/preview"');
  expect(section.html).toContain("Получат 11 пользователей — все, кто писал боту");

  const text = "Скидка <b>50%</b> & <script>alert(1)</script>";
  const preview = await post("/preview", { text });
  expect(preview.status).toBe(200);
  expect(preview.html).toContain("Так сообщение увидят 11 пользователей:");
  expect(preview.html).toContain("Скидка &lt;b&gt;50%&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;");
  expect(preview.html).not.toContain("<script>");
  // Previewing sends nothing.
  expect((await t.shop.broadcasts.recent()).length).toBe(0);

  const started = await post("", { text, action: "send" });
  expect(started.status).toBe(200);
  const [broadcast] = await t.shop.broadcasts.recent();
  expect(broadcast).toMatchObject({ text, createdBy: "panel:owner", status: "pending" });
  expect(broadcast!.progress.total).toBe(11);
  expect(started.html).toContain(`id="broadcast-${broadcast!.id}"`);
  expect(started.html).toContain(`hx-get="/Morpheus%20Private/broadcasts/${broadcast!.id}"`);
  expect(started.html).toContain('hx-trigger="every 1s"');
  expect(started.html).toContain("Отправлено 0 из 11");

  // Progress as the job reports it.
  await t.sql`update broadcast_recipients set status = 'sent' where broadcast_id = ${broadcast!.id} and user_id <= 4`;
  await t.sql`update broadcast_recipients set status = 'blocked' where broadcast_id = ${broadcast!.id} and user_id = 5`;
  const progress = await call(`/${broadcast!.id}`);
  expect(progress.html).toContain('<progress value="5" max="11"');
  expect(progress.html).toContain("Отправлено 4 из 11 · заблокировали бота: 1");
  expect(progress.html).toContain('hx-trigger="every 1s"');

  const cancelled = await post(`/${broadcast!.id}/cancel`, {});
  expect(cancelled.status).toBe(200);
  expect(cancelled.html).toContain("остановлена");
  expect(cancelled.html).toContain("не отправлено после остановки: 6");
  // Finished: the fragment stops polling.
  expect(cancelled.html).not.toContain("hx-trigger");
  expect((await t.shop.broadcasts.byId(broadcast!.id))!.status).toBe("cancelled");
});

test("an empty or too long text is refused with the reason and the text kept; unknown ids are 404", async () => {
  const empty = await post("/preview", { text: "   " });
  expect(empty.status).toBe(422);
  expect(empty.html).toContain("Текст рассылки пуст");
  const long = await post("/preview", { text: "я".repeat(4097) });
  expect(long.status).toBe(422);
  expect(long.html).toContain("Текст рассылки длиннее 4096 символов");
  expect(long.html).toContain("я".repeat(100));
  const edit = await post("", { text: "черновик", action: "edit" });
  expect(edit.html).toContain(">черновик</textarea>");

  expect((await call("/999999")).status).toBe(404);
  expect((await call("/abc")).status).toBe(404);
  expect((await post("/999999/cancel", {})).status).toBe(404);
});

test("with one user the words agree: «Получит 1 пользователь», «Так сообщение увидит 1 пользователь»", async () => {
  await t.sql`update bot_users set blocked_at = now() where telegram_id between 2 and 11`;
  try {
    expect((await call("")).html).toContain("Получит 1 пользователь — все, кто писал боту");
    expect((await post("/preview", { text: "Привет" })).html).toContain("Так сообщение увидит 1 пользователь:");
  } finally {
    await t.sql`update bot_users set blocked_at = null where telegram_id between 2 and 11`;
  }
});
