/**
 * bench/instances: the same licence checks through Caddy to one app process and to two (`setup.sh --instances`),
 * in the same run. Both app processes share one database and one Redis prefix, as installed; Caddy balances them
 * as setup.sh configures it (least_conn), and is in front of the single process too, so the ratio two/one compares
 * like with like. The work: random keys of KEYS activated ones, each from its own PC (signed answers from each
 * process's memory once warm), so the app's CPU is what is measured.
 *
 * The machine has two cores, shared by wrk, Caddy, the app processes, PostgreSQL and Redis: each run records the CPU
 * time every one of them took, which says what the second process can and cannot win here.
 *
 * Standalone: `bun run bench/instances.ts` (BENCH_DURATION, BENCH_ROUNDS).
 */

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { connectDatabase } from "../src/db/client.ts";
import {
  type BenchResult,
  benchDatabase,
  bounded,
  type Check,
  clearRedisPrefix,
  fmt,
  freePort,
  load,
  type Measurement,
  median,
  ms,
  ratio,
  startApp,
  TMP,
  wrk,
  wrkScript,
} from "./lib.ts";

const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const WARMUP_S = 3;
const KEYS = 10_000;
const PRODUCT = "Bench Instances";
const DEADLINE_MS = 5 * 60_000;
const TICKS_PER_S = 100;

type Caddy = { proc: Subprocess; url: string };

async function seed(url: string): Promise<void> {
  const sql = connectDatabase(url, { max: 1 });
  try {
    const [product] = await sql<{ id: string }[]>`insert into products (name) values (${PRODUCT}) returning id`;
    await sql`
      insert into keys (product_id, days, key, state, gift, sold_at, hwid, activated_at, expires_at, last_auth_at)
      select ${product!.id}, 30, 'INST-' || lpad(i::text, 6, '0'), 'sold', true, now(),
             'PC-' || lpad(i::text, 6, '0'), now(), now() + interval '30 days', now()
      from generate_series(1, ${KEYS}::int) as i`;
    await sql`vacuum analyze keys`;
  } finally {
    await sql.end({ timeout: 2 });
  }
}

/** Caddy in front of `upstreams`, plain HTTP on a loopback port, balancing as the installed Caddyfile does. */
async function startCaddy(name: string, upstreams: number[]): Promise<Caddy> {
  const port = freePort();
  const dir = join(TMP, `caddy-${name}`);
  mkdirSync(dir, { recursive: true });
  const config = join(dir, "Caddyfile");
  writeFileSync(
    config,
    [
      "{",
      "\tadmin off",
      "\tauto_https off",
      "}",
      `http://127.0.0.1:${port} {`,
      `\treverse_proxy ${upstreams.map((p) => `127.0.0.1:${p}`).join(" ")} {`,
      "\t\tlb_policy least_conn",
      "\t}",
      "}",
      "",
    ].join("\n"),
  );
  const proc = Bun.spawn(["caddy", "run", "--adapter", "caddyfile", "--config", config], {
    env: { PATH: process.env.PATH, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
    stdout: "ignore",
    stderr: "ignore",
  });
  const url = `http://127.0.0.1:${port}/Morpheus%20Private`;
  const until = Date.now() + 15_000;
  while (
    !(await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (proc.exitCode !== null || Date.now() > until) throw new Error(`bench/instances: caddy ${name} did not start`);
    await Bun.sleep(100);
  }
  return { proc, url };
}

/** CPU seconds a process has used so far (user + system), from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  } catch {
    return Number.NaN;
  }
}

/** The whole machine's busy and total CPU seconds so far. */
function machineCpu(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!.split(/\s+/).slice(1).map(Number);
  const total = line.reduce((a, b) => a + b, 0);
  const idle = line[3]! + line[4]!;
  return { busy: (total - idle) / TICKS_PER_S, total: total / TICKS_PER_S };
}

type Run = Measurement & { cpu: Record<string, number> };

export function runInstancesBench(): Promise<BenchResult> {
  return bounded("instances", DEADLINE_MS, measureAll);
}

async function measureAll(defer: (step: () => Promise<unknown>) => void): Promise<BenchResult> {
  const started = performance.now();
  const loadBefore = load();
  const db = await benchDatabase("instances");
  defer(db.drop);
  await seed(db.url);
  const prefix = `mphbench:${Date.now().toString(36)}${process.pid}:instances:`;
  defer(() => clearRedisPrefix(prefix));
  const env = { AUTH_LIMIT_PER_IP: "1000000000", AUTH_LIMIT_PER_KEY: "1000000000" };
  const first = await startApp({ databaseUrl: db.url, redisPrefix: prefix, env });
  defer(first.stop);
  const second = await startApp({ databaseUrl: db.url, redisPrefix: prefix, env });
  defer(second.stop);
  const one = await startCaddy("one", [first.port]);
  defer(async () => one.proc.kill("SIGTERM"));
  const two = await startCaddy("two", [first.port, second.port]);
  defer(async () => two.proc.kill("SIGTERM"));

  const authPath = `/api/${encodeURIComponent(PRODUCT)}/auth`;
  const script = wrkScript("instances-random.lua", {
    expect: 200,
    perRequest: `(function() local i = math.random(1, ${KEYS}); return string.format('{"key":"INST-%06d","uuid":"PC-%06d"}', i, i) end)()`,
  });
  const parts = {
    "app 1": first.proc.pid,
    "app 2": second.proc.pid,
    "caddy (one)": one.proc.pid,
    "caddy (two)": two.proc.pid,
  };

  async function measure(name: "one" | "two", seconds: number): Promise<Run> {
    const caddy = name === "one" ? one : two;
    const before = Object.fromEntries(Object.entries(parts).map(([k, pid]) => [k, cpuSeconds(pid)]));
    const machineBefore = machineCpu();
    const m = await wrk(name, `${caddy.url}${authPath}`, script, seconds);
    const machineAfter = machineCpu();
    const cpu: Record<string, number> = {};
    for (const [k, pid] of Object.entries(parts)) cpu[k] = (cpuSeconds(pid) - before[k]!) / seconds;
    // Everything else that ran meanwhile: wrk, PostgreSQL, Redis, and whatever else shares the machine.
    const busy = (machineAfter.busy - machineBefore.busy) / seconds;
    cpu.other = busy - Object.values(cpu).reduce((a, b) => a + b, 0);
    cpu.machine = busy;
    return { ...m, cpu };
  }

  await measure("one", WARMUP_S);
  await measure("two", WARMUP_S);
  const runs: { one: Run; two: Run }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      const a = await measure("one", DURATION_S);
      runs.push({ one: a, two: await measure("two", DURATION_S) });
    } else {
      const b = await measure("two", DURATION_S);
      runs.push({ one: await measure("one", DURATION_S), two: b });
    }
  }

  const ratioTwoOne = median(runs.map((r) => r.two.rps / r.one.rps));
  const errors = runs.reduce((sum, r) => sum + r.one.errors + r.two.errors, 0);
  const cpuOf = (which: "one" | "two", part: string) => median(runs.map((r) => r[which].cpu[part] ?? Number.NaN));
  const row = (which: "one" | "two", label: string) => {
    const all = runs.map((r) => r[which]);
    const apps =
      which === "one"
        ? `${ratio(cpuOf(which, "app 1"))}`
        : `${ratio(cpuOf(which, "app 1"))} + ${ratio(cpuOf(which, "app 2"))}`;
    return `| ${label} | ${fmt(median(all.map((m) => m.rps)))} | ${ms(median(all.map((m) => m.p50Ms)))} | ${ms(median(all.map((m) => m.p99Ms)))} | ${apps} | ${ratio(cpuOf(which, which === "one" ? "caddy (one)" : "caddy (two)"))} | ${ratio(cpuOf(which, "other"))} | ${ratio(cpuOf(which, "machine"))} |`;
  };
  const checks: Check[] = [
    {
      id: "instances.two-vs-one",
      benchmark: "instances",
      what: "auth through Caddy: two app processes against one",
      figure: "checks/s, two ÷ one",
      baseline: "one process, same run",
      value: ratioTwoOne,
      target: `reported (${cpus().length} cores)`,
      met: Number.isFinite(ratioTwoOne),
    },
    {
      id: "instances.errors",
      benchmark: "instances",
      what: "answers other than 200 and socket errors",
      figure: "count",
      baseline: "—",
      value: errors,
      target: "0",
      met: errors === 0,
    },
  ];
  const markdown = [
    "## Instances: one app process or two, behind Caddy",
    "",
    `Random keys of ${fmt(KEYS)} activated ones, each from its own PC, \`wrk -t2 -c64\` through Caddy (least_conn) to`,
    `one app process or to two on the same database and Redis; ${ROUNDS} rounds of ${DURATION_S} s taking turns;`,
    `load average ${loadBefore} at the start. CPU columns: cores used (1.00 = one core busy all the time).`,
    "",
    "| app processes | checks/s | p50 ms | p99 ms | CPU: app | CPU: Caddy | CPU: the rest (wrk, PostgreSQL, Redis, others) | CPU: machine |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    row("one", "one"),
    row("two", "two"),
    "",
    `Two processes answer **${ratio(ratioTwoOne)}×** the checks of one (median of the rounds' ratios). With one`,
    `process the machine's ${cpus().length} cores were ${ratio(cpuOf("one", "machine"))} busy: the app took`,
    `${ratio(cpuOf("one", "app 1"))}, Caddy ${ratio(cpuOf("one", "caddy (one)"))}, the load generator, PostgreSQL and the`,
    `rest ${ratio(cpuOf("one", "other"))}. A second process can only use what is left of the cores, and here the load`,
    "generator and Caddy share them; on a server whose loaders are elsewhere each process has a core to itself.",
    "",
  ].join("\n");
  return { name: "instances", markdown, checks, seconds: (performance.now() - started) / 1000 };
}

if (import.meta.main) {
  const result = await runInstancesBench();
  console.log(result.markdown);
  for (const c of result.checks) console.log(`${c.id}: ${c.value} (${c.met ? "met" : "MISSED"})`);
}
