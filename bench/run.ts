/**
 * `bun run bench`: every benchmark in turn, each with its baseline measured in the same run; the report goes to
 * bench/RESULTS.md. `bun run bench auth panel` runs only those (the report then goes to bench/tmp/partial.md, so
 * RESULTS.md always holds one complete run). Each benchmark stops itself; the whole run takes about 15 minutes.
 *
 * bench/before.json, when present, is the checks of an earlier run (before the hot-path fixes): RESULTS.md shows
 * them next to this run's. bench/notes.ts says, for a target that is missed, what limits it and what would move it.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import postgres from "postgres";
import { runAllocationBench } from "./allocation.ts";
import { runAuthBench } from "./auth.ts";
import { runBroadcastBench } from "./broadcast.ts";
import { runCatalogueBench } from "./catalogue.ts";
import { runDeliveryBench } from "./delivery.ts";
import { runInstancesBench } from "./instances.ts";
import { ADMIN_URL, type BenchResult, type Check, load, REDIS_URL, ROOT, TMP } from "./lib.ts";
import { runMismatchRecordingBench } from "./mismatch-recording.ts";
import { FIXES, MISSED } from "./notes.ts";
import { runPanelBench } from "./panel-lists.ts";

const BENCHMARKS: Record<string, () => Promise<BenchResult>> = {
  auth: runAuthBench,
  "mismatch-recording": runMismatchRecordingBench,
  allocation: () => runAllocationBench({ orders: 1_000, rounds: 5 }),
  catalogue: runCatalogueBench,
  panel: runPanelBench,
  broadcast: runBroadcastBench,
  instances: runInstancesBench,
  delivery: runDeliveryBench,
};
/** The whole run stops after this long, whatever happens (each benchmark also has its own deadline). */
const RUN_DEADLINE_MS = 30 * 60_000;

type RunRecord = {
  date: string;
  commit: string;
  loadAverage: { start: string; end: string };
  machine: Record<string, string>;
  checks: Check[];
};

function text(command: string[]): string {
  const result = Bun.spawnSync(command, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  return `${result.stdout.toString()}${result.stderr.toString()}`.trim();
}

async function machine(): Promise<Record<string, string>> {
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  const [pg] = await admin<{ version: string; shared_buffers: string }[]>`
    select current_setting('server_version') as version, current_setting('shared_buffers') as shared_buffers`;
  await admin.end({ timeout: 2 });
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on("error", () => {});
  const info = await redis.info("server").catch(() => "");
  redis.disconnect();
  const os = /PRETTY_NAME="([^"]+)"/.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "Linux";
  return {
    CPU: `${cpus().length} × ${cpus()[0]?.model.trim() ?? "unknown"}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    OS: `${os}, kernel ${release()}`,
    Bun: `${Bun.version} (${Bun.revision.slice(0, 9)})`,
    PostgreSQL: `${pg?.version ?? "?"} (shared_buffers ${pg?.shared_buffers ?? "?"}, same machine)`,
    Redis: `${/redis_version:(\S+)/.exec(info)?.[1] ?? "?"} (same machine)`,
    wrk: text(["wrk", "-v"]).split("\n")[0] ?? "?",
  };
}

function summaryTable(checks: Check[]): string[] {
  return [
    "| benchmark | what | figure | baseline (same run) | value | target | met | load (1 min) at its start → end |",
    "|---|---|---:|---:|---:|---|:---:|---|",
    ...checks.map(
      (c) =>
        `| ${c.benchmark} | ${c.what} | ${c.figure} | ${c.baseline} | ${round(c.value)} | ${c.target} | ${c.met ? "yes" : "**no**"} | ${c.load ?? "—"} |`,
    ),
  ];
}

const round = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2));

function beforeAfter(before: RunRecord, checks: Check[]): string[] {
  const rows = checks.map((c) => ({ c, b: before.checks.find((x) => x.id === c.id) })).filter((r) => r.b !== undefined);
  return [
    "## Before and after the fixes",
    "",
    `Before: \`bun run bench\` on commit ${before.commit}, ${before.date}, load average ${before.loadAverage.start} at its start.`,
    "After: this run. Absolute figures move with the machine's load; the ratios inside each run are what compare.",
    "",
    "| check | before: figure | before: value | after: figure | after: value | target |",
    "|---|---:|---:|---:|---:|---|",
    ...rows.map(
      ({ c, b }) =>
        `| ${c.benchmark}: ${c.what} | ${b!.figure} | ${round(b!.value)}${b!.met ? "" : " ✗"} | ${c.figure} | ${round(c.value)}${c.met ? "" : " ✗"} | ${c.target} |`,
    ),
    "",
    FIXES,
    "",
  ];
}

async function main(): Promise<void> {
  const deadline = setTimeout(() => {
    console.error(`bench: still running after ${RUN_DEADLINE_MS / 60_000} min, stopping`);
    process.exit(1);
  }, RUN_DEADLINE_MS);
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((name) => !(name in BENCHMARKS));
  if (unknown.length > 0) {
    console.error(`bench: unknown benchmark ${unknown.join(", ")}; known: ${Object.keys(BENCHMARKS).join(", ")}`);
    process.exit(2);
  }
  const names = wanted.length > 0 ? wanted : Object.keys(BENCHMARKS);
  const complete = names.length === Object.keys(BENCHMARKS).length;
  const started = new Date();
  const loadStart = load();
  const commit = `${text(["git", "rev-parse", "--short", "HEAD"])}${text(["git", "status", "--porcelain", "--untracked-files=no"]) ? " (with uncommitted changes)" : ""}`;
  const results: BenchResult[] = [];
  for (const name of names) {
    console.error(`bench: ${name}… (load average ${load()})`);
    const loadBefore = loadavg()[0]!.toFixed(2);
    const result = await BENCHMARKS[name]!();
    for (const check of result.checks) check.load = `${loadBefore} → ${loadavg()[0]!.toFixed(2)}`;
    console.error(`bench: ${name} done in ${result.seconds.toFixed(0)} s`);
    results.push(result);
  }
  const checks = results.flatMap((r) => r.checks);
  const record: RunRecord = {
    date: started.toISOString(),
    commit,
    loadAverage: { start: loadStart, end: load() },
    machine: await machine(),
    checks,
  };
  const minutes = (Date.now() - started.getTime()) / 60_000;
  const missed = checks.filter((c) => !c.met);
  let before: RunRecord | null = null;
  try {
    before = JSON.parse(readFileSync(join(import.meta.dir, "before.json"), "utf8")) as RunRecord;
  } catch {
    before = null;
  }

  const report = [
    "# Benchmark results",
    "",
    `One \`bun run bench\` run: started ${record.date}, took ${minutes.toFixed(1)} min, commit ${commit}.`,
    "",
    "| machine | |",
    "|---|---|",
    ...Object.entries(record.machine).map(([k, v]) => `| ${k} | ${v} |`),
    `| load average (1, 5, 15 min) | ${record.loadAverage.start} at the start, ${record.loadAverage.end} at the end |`,
    "",
    "The previous complete run (2026-12-01, before signed answers, several app processes and the key's lifecycle) is",
    "kept in [RESULTS-2026-12-01.md](RESULTS-2026-12-01.md); the before/after table below compares with the run before",
    "the first hot-path fixes (bench/before.json).",
    "",
    "The machine is shared: other sessions run their test suites on the same 2 cores while this runs, and the load",
    "generator, the app, PostgreSQL and Redis share them too. Every figure is compared with a baseline measured in the",
    "same run, scenarios take turns over several rounds, and the ratios are medians of per-round ratios.",
    "",
    "## Targets",
    "",
    ...summaryTable(checks),
    "",
    missed.length === 0 ? "Every target is met in this run." : `${missed.length} of ${checks.length} checks missed:`,
    "",
    ...missed.map(
      (c) =>
        `- **${c.benchmark}: ${c.what}** (${round(c.value)}, target ${c.target}). ${MISSED[c.id] ?? MISSED[c.benchmark] ?? "No note yet."}`,
    ),
    ...(missed.length ? [""] : []),
    ...(before ? beforeAfter(before, checks) : []),
    ...results.map((r) => `${r.markdown}\n_${r.name}: ${r.seconds.toFixed(0)} s._\n`),
  ].join("\n");

  mkdirSync(TMP, { recursive: true });
  writeFileSync(join(TMP, "results.json"), `${JSON.stringify(record, null, 2)}\n`);
  const out = complete ? join(import.meta.dir, "RESULTS.md") : join(TMP, "partial.md");
  writeFileSync(out, report);
  console.log(report);
  console.error(`bench: wrote ${out} (${minutes.toFixed(1)} min, load average now ${loadavg()[0]!.toFixed(2)})`);
  clearTimeout(deadline);
  const invalid = checks.filter((c) => c.id.endsWith(".errors") && !c.met);
  if (invalid.length > 0) {
    console.error("bench: some runs had wrong answers; the figures are not valid");
    process.exit(1);
  }
}

await main();
