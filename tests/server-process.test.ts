import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { ensureProduct, eventually, soldKey } from "./helpers/licence.ts";
import { cleanEnv, start } from "./helpers/process.ts";
import { freePort } from "./helpers/servers.ts";
import { createTestShop } from "./helpers/shop.ts";

// These tests start processes and servers: on a loaded shared machine that can take a while; hang protection only.
setDefaultTimeout(30_000);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe("configuration", () => {
  test("`bun run start` with a bad value exits non-zero with that one line", async () => {
    const p = start(["bun", "run", "--silent", "start"], cleanEnv({ PORT: "abc" }));
    expect(await p.proc.exited).not.toBe(0);
    expect(p.stderr.filter(Boolean)).toEqual(["config error: PORT: must be a port number"]);
  });

  test("`bun run start` without DATABASE_URL says so instead of falling back to the embedded database", async () => {
    const p = start(["bun", "src/main.ts"], cleanEnv({}));
    expect(await p.proc.exited).toBe(2);
    expect(p.stderr.filter(Boolean)).toEqual(["config error: DATABASE_URL: must be set for `bun run start`"]);
  });
});

/** `bun src/main.ts` against the test shop's PostgreSQL and Redis, listening, with the given drain on SIGTERM. */
async function startProduction(t: Awaited<ReturnType<typeof createTestShop>>, drainMs: number) {
  const port = freePort();
  const app = start(
    ["bun", "src/main.ts"],
    cleanEnv({
      DATABASE_URL: t.databaseUrl,
      REDIS_URL: t.redisUrl,
      REDIS_PREFIX: t.redisPrefix,
      HOST: "127.0.0.1",
      PORT: String(port),
      SESSION_SECRET: "x".repeat(40),
      DATA_DIR: t.config.dataDir,
      LOG_LEVEL: "info",
      SHUTDOWN_DRAIN_MS: String(drainMs),
    }),
  );
  cleanups.push(async () => {
    app.proc.kill("SIGKILL");
  });
  await app.waitFor(/"msg":"http listening"/);
  return { app, port };
}

describe("the production process", () => {
  test("on SIGTERM it serves on while telling Caddy's probe it leaves, then closes its port, finishes the request in flight and exits 0", async () => {
    const t = await createTestShop();
    cleanups.push(t.close);
    await ensureProduct(t, "Live");
    const key = await soldKey(t, "Live");
    const { app, port } = await startProduction(t, 1500);
    const base = `http://127.0.0.1:${port}/Morpheus%20Private`;
    const health = await fetch(`${base}/healthz`);
    // No token in this shop: its bot says so once it has read the settings.
    expect(await health.json()).toEqual({
      ok: true,
      postgres: "ok",
      redis: "ok",
      bot: expect.stringMatching(/^(starting|no_token)$/),
    });

    // Hold the key's row so its first activation waits inside the app, then ask the app to stop.
    const release = Promise.withResolvers<void>();
    const locked = Promise.withResolvers<void>();
    const holder = t.sql.begin(async (tx) => {
      await tx`select id from keys where key = ${key} for update`;
      locked.resolve();
      await release.promise;
    });
    await locked.promise;
    const inFlight = fetch(`${base}/api/Live/auth?key=${key}&uuid=PC`);
    // SIGTERM only once the app is inside the request (its activation waits on the row lock): a fixed sleep here
    // could signal before a loaded machine had even accepted the connection.
    await eventually(async () => {
      const [waiting] = await t.sql<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`;
      return waiting!.n > 0;
    }, 10_000);
    app.proc.kill("SIGTERM");
    await app.waitFor(/"msg":"shutting down"/);
    // Leaving: Caddy's probe hears 503 and sends new calls to the other processes; a call that still comes is served.
    const probe = await fetch(`${base}/healthz?scope=process`);
    expect(probe.status).toBe(503);
    expect(await probe.json()).toMatchObject({ ok: true, stopping: true });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    await app.waitFor(/"msg":"closing the port/, 5_000);
    await Bun.sleep(100);
    // Then new connections are refused while the old request is still being answered.
    expect(app.proc.exitCode).toBeNull();
    const refused = await fetch(`${base}/healthz`).then(
      () => "answered",
      () => "refused",
    );
    expect(refused).toBe("refused");
    release.resolve();
    await holder;
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { success: boolean }).success).toBe(true);
    expect(await app.proc.exited).toBe(0);
    expect(app.stdout.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
    const [row] = await t.sql`select hwid from keys where key = ${key}`;
    expect(row!.hwid).toBe("PC");
  });

  test("a request that does not finish holds the stop up for 10 s at most: its connection is cut, exit 0", async () => {
    const t = await createTestShop();
    cleanups.push(t.close);
    await ensureProduct(t, "Stuck");
    const key = await soldKey(t, "Stuck");
    const { app, port } = await startProduction(t, 0);
    // The key's row stays locked until the app is gone: its activation never finishes.
    const release = Promise.withResolvers<void>();
    const locked = Promise.withResolvers<void>();
    const holder = t.sql.begin(async (tx) => {
      await tx`select id from keys where key = ${key} for update`;
      locked.resolve();
      await release.promise;
    });
    await locked.promise;
    const stuck = fetch(`http://127.0.0.1:${port}/Morpheus%20Private/api/Stuck/auth?key=${key}&uuid=PC`).then(
      (res) => `answered ${res.status}`,
      () => "cut",
    );
    await eventually(async () => {
      const [waiting] = await t.sql<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`;
      return waiting!.n > 0;
    }, 10_000);
    const signalled = performance.now();
    app.proc.kill("SIGTERM");
    expect(await stuck).toBe("cut");
    const cutAfter = performance.now() - signalled;
    expect(cutAfter).toBeGreaterThan(9_500);
    expect(cutAfter).toBeLessThan(14_000);
    release.resolve();
    await holder;
    expect(await app.proc.exited).toBe(0);
    expect([...app.stdout, ...app.stderr].some((l) => l.includes("requests still in flight after the limit"))).toBe(
      true,
    );
  });
});
