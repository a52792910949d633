/**
 * What every benchmark shares: throwaway databases, the app as its own process, wrk as the load generator, RSS
 * samples, medians, and the shape of a result (its figures in markdown plus the target checks the summary lists).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { Redis } from "ioredis";
import postgres from "postgres";
import { connectDatabase, type Sql } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";

export const ADMIN_URL =
  process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
export const TMP = join(import.meta.dir, "tmp");
export const ROOT = join(import.meta.dir, "..");

/** One target of the issue, as measured: the figure, its baseline from the same run, and whether it is met. */
export type Check = {
  /** Stable id, e.g. "auth.framework": run.ts compares runs (before/after) by it. */
  id: string;
  benchmark: string;
  what: string;
  figure: string;
  baseline: string;
  /** The number the target is stated in (a ratio, ms, MB, messages/s). */
  value: number;
  target: string;
  met: boolean;
  /** The 1-minute load average when its benchmark started and ended (bench/run.ts fills it in). */
  load?: string;
};

export type BenchResult = { name: string; markdown: string; checks: Check[]; seconds: number };

/** A load run: throughput and latency as the client saw them. */
export type Measurement = {
  name: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Answers with another status than expected, plus socket errors: must be 0 for the figures to count. */
  errors: number;
};

export const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
export const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
export const ratio = (n: number) => (n >= 10 ? n.toFixed(0) : n.toFixed(2));
export const load = () =>
  loadavg()
    .map((n) => n.toFixed(2))
    .join(" ");

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** A database of its own for one benchmark, migrated; `drop()` removes it whatever state it is in. */
export async function benchDatabase(tag: string): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = `mph_bench_${tag}_${Date.now().toString(36)}${process.pid}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const sql = connectDatabase(url.toString(), { max: 1 });
  try {
    await migrate(sql);
  } finally {
    await sql.end({ timeout: 2 });
  }
  return {
    url: url.toString(),
    name,
    drop: async () => {
      await admin.unsafe(`drop database if exists "${name}" with (force)`).catch(() => {});
      await admin.end({ timeout: 2 });
    },
  };
}

/** Drops every database whose name matches a LIKE pattern: what a benchmark cut short left behind. */
export async function dropDatabasesLike(pattern: string): Promise<void> {
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    const rows = await admin<{ datname: string }[]>`select datname from pg_database where datname like ${pattern}`;
    for (const { datname } of rows) await admin.unsafe(`drop database if exists "${datname}" with (force)`);
  } finally {
    await admin.end({ timeout: 2 });
  }
}

/** Deletes every Redis key under a prefix (rate-limit counters, leases): a bench leaves nothing behind. */
export async function clearRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on("error", () => {});
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== "0");
  } catch {
    // Counters expire by themselves within their windows.
  } finally {
    redis.disconnect();
  }
}

export function freePort(): number {
  const server = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = server.port!;
  server.stop(true);
  return port;
}

/** The app (bench/server.ts: the production HTTP app plus a constant route) as its own process. */
export type AppProcess = { proc: Subprocess; port: number; base: string; stop: () => Promise<void> };

export async function startApp(options: {
  databaseUrl: string;
  redisPrefix: string;
  env?: Record<string, string>;
  /** Keep the request log (stdout) for the caller to read, instead of discarding it as nobody reads it. */
  logTo?: string;
}): Promise<AppProcess> {
  const port = freePort();
  const proc = Bun.spawn(["bun", "bench/server.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      REDIS_URL,
      REDIS_PREFIX: options.redisPrefix,
      HOST: "127.0.0.1",
      PORT: String(port),
      LOG_LEVEL: "info",
      SESSION_SECRET: "bench-session-secret-that-is-long-enough-0123456789",
      // As setup.sh runs the app (its systemd unit and direct start): the garbage collector sized for 512 MB of RAM.
      BUN_JSC_forceRAMSize: "536870912",
      ...options.env,
    },
    stdout: options.logTo ? Bun.file(options.logTo) : "ignore",
    stderr: "inherit",
  });
  const base = `http://127.0.0.1:${port}/Morpheus%20Private`;
  const until = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`the app exited (${proc.exitCode}) during start-up`);
    const ok = await fetch(`${base}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > until) {
      proc.kill("SIGKILL");
      throw new Error("the app did not answer /healthz within 30 s");
    }
    await Bun.sleep(100);
  }
  return {
    proc,
    port,
    base,
    stop: async () => {
      if (proc.exitCode !== null) return;
      proc.kill("SIGTERM");
      await Promise.race([proc.exited, Bun.sleep(5_000)]);
      if (proc.exitCode === null) proc.kill("SIGKILL");
    },
  };
}

/**
 * The framework's ceiling (bench/bare.ts: a bare Elysia app answering a constant on the auth API's path) as its own
 * process; `base` is the same shape as the app's, so the same wrk script and path reach it.
 */
export async function startBare(): Promise<AppProcess> {
  const port = freePort();
  const proc = Bun.spawn(["bun", "bench/bare.ts"], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), BUN_JSC_forceRAMSize: "536870912" },
    stdout: "ignore",
    stderr: "ignore",
  });
  const base = `http://127.0.0.1:${port}/Morpheus%20Private`;
  const until = Date.now() + 30_000;
  while (
    !(await fetch(`${base}/healthz`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (proc.exitCode !== null || Date.now() > until) {
      proc.kill("SIGKILL");
      throw new Error("bench/bare.ts did not start");
    }
    await Bun.sleep(100);
  }
  return {
    proc,
    port,
    base,
    stop: async () => {
      proc.kill("SIGTERM");
      await Promise.race([proc.exited, Bun.sleep(5_000)]);
      if (proc.exitCode === null) proc.kill("SIGKILL");
    },
  };
}

/** CPU time (user + system) a process has used so far, in seconds, from /proc (Linux; 100 ticks a second). */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** Resident memory of a process in MB, from /proc (Linux). */
export function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
    return kb ? Number(kb) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Samples a process's RSS every `everyMs` until stopped; returns the highest sample. */
export function watchRss(pid: number, everyMs = 100): { stop: () => number } {
  let max = rssMb(pid);
  const timer = setInterval(() => {
    const now = rssMb(pid);
    if (now > max) max = now;
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(max, rssMb(pid));
    },
  };
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value.trim());
  if (!m) throw new Error(`cannot read wrk latency "${value}"`);
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : n * 60_000;
}

/** Reads `wrk --latency` output plus the UNEXPECTED line our Lua scripts print. */
export function parseWrk(name: string, text: string): Measurement {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const p50 = /^\s+50%\s+(\S+)/m.exec(text);
  const p99 = /^\s+99%\s+(\S+)/m.exec(text);
  const total = /(\d+) requests in/.exec(text);
  if (!rps || !p50 || !p99 || !total) throw new Error(`cannot read wrk output:\n${text}`);
  const unexpected = /^UNEXPECTED (\d+)$/m.exec(text);
  if (!unexpected) throw new Error(`the wrk script did not report its status check:\n${text}`);
  const socket = /Socket errors:.*?connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
  return {
    name,
    rps: Number(rps[1]),
    p50Ms: toMs(p50[1]!),
    p99Ms: toMs(p99[1]!),
    requests: Number(total[1]),
    errors: Number(unexpected[1]) + socketErrors,
  };
}

export const CONNECTIONS = 64;

/** wrk -t2 -c64 for `seconds` with a Lua script from `wrkScript`. */
export async function wrk(name: string, url: string, script: string, seconds: number): Promise<Measurement> {
  const proc = Bun.spawn(
    ["wrk", "-t2", `-c${CONNECTIONS}`, `-d${seconds}s`, "--latency", "--timeout", "5s", "-s", script, url],
    { stdout: "pipe", stderr: "pipe" },
  );
  const [code, out, err] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  if (code !== 0) throw new Error(`wrk failed (${code}): ${err || out}`);
  return parseWrk(name, out);
}

/**
 * A wrk Lua script: POSTs JSON, counts answers whose status is not `expect` and prints the count. `body` is either a
 * fixed JSON text or a Lua expression evaluated per request (`perRequest`), which sees `tid` (0 or 1, the wrk
 * thread) and `n` (this thread's request number, from 1).
 */
export function wrkScript(
  file: string,
  options: { expect: number; body?: string; perRequest?: string; method?: "GET" | "POST" },
): string {
  mkdirSync(TMP, { recursive: true });
  const lines = [
    `wrk.method = "${options.method ?? "POST"}"`,
    `wrk.headers["Content-Type"] = "application/json"`,
    "local threads = {}",
    "local count = 0",
    "function setup(thread) thread:set('tid', count); count = count + 1; table.insert(threads, thread) end",
    "function init(args) unexpected = 0; n = 0; math.randomseed(os.time() + tid * 7919) end",
    `function response(status, headers, body) if status ~= ${options.expect} then unexpected = unexpected + 1 end end`,
    "function done(summary, latency, requests)",
    "  local total = 0",
    "  for _, t in ipairs(threads) do total = total + t:get('unexpected') end",
    '  io.write(string.format("UNEXPECTED %d\\n", total))',
    "end",
  ];
  if (options.perRequest) {
    lines.push("function request()", "  n = n + 1", `  return wrk.format(nil, nil, nil, ${options.perRequest})`, "end");
  } else if (options.body !== undefined) {
    lines.push(`wrk.body = '${options.body}'`);
  }
  const path = join(TMP, file);
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
}

/**
 * Runs a benchmark that must stop by itself: `body` registers what to undo (`defer`), which runs in reverse order
 * when it ends, fails, or is still running after `ms` — then the process exits, so a hung step never hangs the run.
 */
export async function bounded<T>(
  name: string,
  ms: number,
  body: (defer: (step: () => Promise<unknown>) => void) => Promise<T>,
): Promise<T> {
  const steps: (() => Promise<unknown>)[] = [];
  const undo = async () => {
    for (const step of steps.splice(0).reverse()) await step().catch(() => {});
  };
  const timer = setTimeout(() => {
    console.error(`bench/${name}: still running after ${Math.round(ms / 1000)} s, stopping`);
    void undo().finally(() => process.exit(1));
  }, ms);
  try {
    return await body((step) => steps.push(step));
  } finally {
    clearTimeout(timer);
    await undo();
  }
}

export type { Sql };
