/**
 * A rolling restart behind Caddy loses no call (docs/operator.md#several-app-processes): two app processes as
 * `setup.sh --instances 2` runs them (`bun src/main.ts`), a real Caddy balancing them with the repo's own Caddyfile
 * settings (its `(balancing)` block, `buffer_requests` as for the loaders' calls), loaders calling all the while,
 * and each process restarted in turn as `setup.sh restart` does it: SIGTERM, wait for the exit, start, wait until
 * it answers. Caddy 2.6 resends a buffered call that found a port closing without its body (a 502), so a process
 * must stop being chosen before it closes its port.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually, soldKey } from "./helpers/licence.ts";
import { type Started, shopProcesses } from "./helpers/process.ts";
import { freePort } from "./helpers/servers.ts";
import { createTestShop, type TestShop } from "./helpers/shop.ts";

setDefaultTimeout(90_000);

const ROOT = join(import.meta.dir, "..");
const PRODUCT = "Rolling";
const LOADERS = 16;

let t: TestShop;
let work: string;
let caddy: ReturnType<typeof Bun.spawn> | undefined;
const shops = shopProcesses(() => ({
  DATABASE_URL: t.databaseUrl,
  REDIS_URL: t.redisUrl,
  REDIS_PREFIX: t.redisPrefix,
  SESSION_SECRET: "rolling-test-session-secret-0123456789",
  DATA_DIR: t.config.dataDir,
  AUTH_LIMIT_PER_IP: "1000000000",
  AUTH_LIMIT_PER_KEY: "1000000000",
}));
const ports = [freePort(), freePort()] as const;
const caddyPort = freePort();
const processes = new Map<number, Started>();

/** The repo's Caddyfile, its `(balancing)` block as setup.sh fills it, in front of this test's two processes. */
function caddyfile(): string {
  const template = readFileSync(join(ROOT, "Caddyfile"), "utf8");
  const balancing = /^\(balancing\) \{\n[\s\S]*?^\}\n/m.exec(template)?.[0];
  if (!balancing) throw new Error("the Caddyfile has no (balancing) block");
  return [
    "{\n\tadmin off\n\tauto_https off\n}",
    balancing.replace("{{HEALTH_URI}}", "/Morpheus%20Private/healthz?scope=process"),
    `http://127.0.0.1:${caddyPort} {`,
    `\treverse_proxy ${ports.map((p) => `127.0.0.1:${p}`).join(" ")} {`,
    "\t\timport balancing",
    "\t\tbuffer_requests",
    "\t}",
    "}",
    "",
  ].join("\n");
}

async function startProcess(port: number): Promise<void> {
  const p = shops.start(port);
  processes.set(port, p);
  await p.waitFor(/"msg":"http listening"/, 30_000);
}

beforeAll(async () => {
  const version = Bun.spawnSync(["caddy", "version"], { stdout: "pipe", stderr: "pipe" });
  if (version.exitCode !== 0) throw new Error("caddy is missing: apt-get install caddy (Debian's package)");
  t = await createTestShop();
  work = mkdtempSync(join(tmpdir(), "mph-rolling-"));
  await Promise.all(ports.map(startProcess));
  writeFileSync(join(work, "Caddyfile"), caddyfile());
  caddy = Bun.spawn(["caddy", "run", "--config", join(work, "Caddyfile"), "--adapter", "caddyfile"], {
    env: { ...process.env, HOME: work, XDG_DATA_HOME: work, XDG_CONFIG_HOME: work },
    stdout: "ignore",
    stderr: "ignore",
  });
});

afterAll(async () => {
  caddy?.kill("SIGKILL");
  await shops.killAll();
  await t?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("restarting each of two processes in turn while loaders call through Caddy: every call is answered", async () => {
  const key = await soldKey(t, PRODUCT, 30);
  const url = `http://127.0.0.1:${caddyPort}/Morpheus%20Private/api/${PRODUCT}/auth`;
  const call = () =>
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key, uuid: "LOADER-PC" }),
    }).then(
      async (res) => `${res.status} ${res.status === 200 ? "" : await res.text()}`.trim(),
      (error) => `failed: ${(error as Error).message}`,
    );
  // Through Caddy, once it has found both processes healthy.
  await eventually(async () => (await call()) === "200", 20_000);
  await Bun.sleep(2_500);

  const answers = new Map<string, number>();
  let calling = true;
  const loaders = Array.from({ length: LOADERS }, async () => {
    while (calling) {
      const answer = await call();
      answers.set(answer, (answers.get(answer) ?? 0) + 1);
    }
  });
  for (const port of ports) {
    const old = processes.get(port)!;
    old.proc.kill("SIGTERM");
    expect(await old.proc.exited).toBe(0);
    await startProcess(port);
    // As setup.sh's restart_app: the next process goes only once Caddy has probed this one (every 2 s).
    await Bun.sleep(3_000);
  }
  calling = false;
  await Promise.all(loaders);

  const total = [...answers.values()].reduce((a, b) => a + b, 0);
  console.info(`${total} calls through Caddy during the restarts: ${JSON.stringify(Object.fromEntries(answers))}`);
  expect(total).toBeGreaterThan(500);
  expect(Object.fromEntries(answers)).toEqual({ "200": total });
});
