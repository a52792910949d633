/**
 * The systemd units setup.sh installs, rendered by setup.sh itself (its render_units, from the templates in deploy/)
 * and checked with `systemd-analyze verify`, which parses them as systemd would (it works where systemd is not
 * running). verify only warns about an unknown key or a bad value and still exits 0, so any output fails the check.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

setDefaultTimeout(30_000);

const ROOT = join(import.meta.dir, "..");
let work: string;
let units: string;

type Run = { code: number; out: string };

function run(cmd: string[], env: Record<string, string> = {}): Run {
  const result = Bun.spawnSync(cmd, { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: result.exitCode, out: `${result.stdout.toString()}${result.stderr.toString()}`.trim() };
}

/** setup.sh sourced (it then only defines its functions), with this installation's paths, running `script`. */
function setupSh(script: string, env: Record<string, string> = {}): Run {
  return run(
    [
      "bash",
      "-c",
      `set -e; source "$ROOT/setup.sh"; APP_DIR=$WORK/opt BUN=$BUN_BIN DATA_DIR=$WORK/data CACHE_DIR=$WORK/cache
       ENV_FILE=$WORK/env; ${script}`,
    ],
    { ROOT, WORK: work, BUN_BIN: process.execPath, ...env },
  );
}

function verify(dir: string, unit: string): Run {
  // The unit's own directory first, so a template and its target are found beside it.
  return run(["systemd-analyze", "verify", "--man=no", join(dir, unit)], { SYSTEMD_UNIT_PATH: `${dir}:` });
}

beforeAll(() => {
  const analyze = run(["systemd-analyze", "--version"]);
  if (analyze.code !== 0) throw new Error("systemd-analyze is missing: apt-get install systemd (Debian's package)");
  work = mkdtempSync(join(tmpdir(), "mph-units-"));
  // The layout setup.sh installs: the release linked as current/, so ExecStart= and WorkingDirectory= exist.
  mkdirSync(join(work, "opt"));
  symlinkSync(ROOT, join(work, "opt", "current"));
  for (const dir of ["data", "cache"]) mkdirSync(join(work, dir));
  writeFileSync(join(work, "env"), "NODE_ENV=production\n");
  units = join(work, "units");
  mkdirSync(units);
  const rendered = setupSh(`INSTANCES=2 PORT=3000; render_units "$WORK/units"`);
  if (rendered.code !== 0) throw new Error(`render_units failed: ${rendered.out}`);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the systemd units setup.sh installs", () => {
  test("are every template in deploy/, rendered with no field left unfilled", () => {
    const templates = readdirSync(join(ROOT, "deploy")).filter((f) => /\.(service|timer|target)$/.test(f));
    expect(readdirSync(units).sort()).toEqual(templates.sort());
    for (const unit of templates) {
      const text = readFileSync(join(units, unit), "utf8");
      expect(text).not.toContain("{{");
      expect(text.split("\n")[0]).toStartWith("# Managed by Morpheus Shop setup.sh");
    }
  });

  test("pass systemd-analyze verify without a single complaint, the app as the instances setup.sh enables", () => {
    for (const file of readdirSync(units)) {
      // A template is verified as one of its instances: morpheus-shop@3000.service, the app on port 3000.
      const unit = file.replace("@.", "@3000.");
      expect({ unit, ...verify(units, unit) }).toEqual({ unit, code: 0, out: "" });
    }
  });

  test("every unit points `systemctl help` at the operator's manual and the README, files the release holds", () => {
    for (const unit of readdirSync(units)) {
      const text = readFileSync(join(units, unit), "utf8");
      const docs = text
        .split("\n")
        .filter((line) => line.startsWith("Documentation="))
        .flatMap((line) => line.slice("Documentation=".length).split(" "));
      expect({ unit, docs }).toEqual({
        unit,
        docs: [`file://${work}/opt/current/docs/operator.md`, `file://${work}/opt/current/README.md`],
      });
      for (const doc of docs) expect(Bun.file(doc.slice("file://".length)).size).toBeGreaterThan(0);
    }
  });

  test("the app runs hardened, writing only to its data directory, within a memory limit", () => {
    const app = readFileSync(join(units, "morpheus-shop@.service"), "utf8");
    const settings = new Set(app.split("\n").filter((line) => /^[A-Z]\w+=/.test(line)));
    for (const line of [
      "User=morpheus",
      "Environment=PORT=%i",
      "WantedBy=morpheus-shop.target",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      `ReadWritePaths=${work}/data`,
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "PrivateDevices=yes",
      "ProtectKernelTunables=yes",
      "ProtectKernelModules=yes",
      "ProtectKernelLogs=yes",
      "ProtectControlGroups=yes",
      "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
      "RestrictNamespaces=yes",
      "LockPersonality=yes",
      "SystemCallFilter=@system-service",
      "CapabilityBoundingSet=",
    ]) {
      expect(settings).toContain(line);
    }
    // Bun's JIT writes the code it runs: under MemoryDenyWriteExecute it would quietly run interpreted only.
    expect(app).not.toMatch(/^MemoryDenyWriteExecute=/m);
    const memoryMax = /^MemoryMax=(\d+)M$/m.exec(app)?.[1];
    expect(Number(memoryMax)).toBeGreaterThanOrEqual(256);
    expect(Number(memoryMax)).toBeLessThanOrEqual(1024);
    // The garbage collector is told at most four fifths of the limit, so it collects hard before the limit is hit.
    const gcBytes = Number(/^Environment=BUN_JSC_forceRAMSize=(\d+)$/m.exec(app)?.[1]);
    expect(gcBytes).toBeGreaterThan(0);
    expect(gcBytes).toBeLessThanOrEqual((Number(memoryMax) * 4 * 2 ** 20) / 5);
  });

  test("systemd-analyze security rates the app's exposure as OK or better", () => {
    const security = run([
      "systemd-analyze",
      "security",
      "--offline=true",
      "--no-pager",
      join(units, "morpheus-shop@.service"),
    ]);
    const score = /Overall exposure level for \S+: ([\d.]+) (\S+)/.exec(security.out);
    expect(score, security.out).not.toBeNull();
    // 10 is an unhardened service, "OK" is below 5; a hardened network daemon with a JIT sits near 2.
    expect(Number(score![1])).toBeLessThan(3);
  });

  test("a broken unit does not pass: the check can fail", () => {
    const broken = join(work, "broken");
    mkdirSync(broken);
    const app = readFileSync(join(units, "morpheus-shop@.service"), "utf8");
    writeFileSync(join(broken, "morpheus-shop@.service"), app.replace(/^MemoryMax=.*$/m, "MemoryMax=lots"));
    expect(verify(broken, "morpheus-shop@3000.service").out).toContain("Invalid memory limit 'lots'");
    writeFileSync(join(broken, "morpheus-shop@.service"), app.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"));
    expect(verify(broken, "morpheus-shop@3000.service").out).toContain("Unknown key 'NoNewPrivilege'");
  });

  test("a template field setup.sh does not fill stops the rendering with its name", () => {
    const template = join(work, "odd.service");
    writeFileSync(template, "# template\n\n[Service]\nExecStart={{BUN}} {{NO_SUCH_FIELD}}\n");
    const rendered = setupSh(`render_unit "${template}"`);
    expect(rendered.code).not.toBe(0);
    expect(rendered.out).toContain("unknown field {{NO_SUCH_FIELD}}");
  });
});
