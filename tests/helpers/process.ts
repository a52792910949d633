import type { Subprocess } from "bun";

/** A process started by a test, with its output collected line by line as it comes. */
export type Started = {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  stdout: string[];
  stderr: string[];
  /** Resolves with the first line (stdout or stderr) that matches, or rejects after timeoutMs. */
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<string>;
};

async function collect(stream: ReadableStream<Uint8Array>, into: string[], onLine: () => void): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    partial += decoder.decode(value, { stream: true });
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    into.push(...lines);
    onLine();
  }
  if (partial) into.push(partial);
  onLine();
}

export function start(cmd: string[], env: Record<string, string | undefined>): Started {
  const proc = Bun.spawn(cmd, { env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of waiters) w();
  };
  void collect(proc.stdout, stdout, wake);
  void collect(proc.stderr, stderr, wake);
  const waitFor = (pattern: RegExp, timeoutMs = 10_000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const line = [...stdout, ...stderr].find((l) => pattern.test(l));
        if (line !== undefined) {
          done();
          resolve(line);
        } else if (proc.exitCode !== null) {
          done();
          reject(new Error(`process exited (${proc.exitCode}) before ${pattern}: ${stderr.join("\n")}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${pattern}; stderr: ${stderr.join("\n")}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      void proc.exited.then(() => setTimeout(check, 50));
      check();
    });
  return { proc, stdout, stderr, waitFor };
}

/** The environment of a spawned shop process: the test's own, minus anything a developer's shell may have set. */
export function cleanEnv(extra: Record<string, string>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const name of [
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_PREFIX",
    "HOST",
    "PORT",
    "BASE_PATH",
    "PUBLIC_URL",
    "BOT_TOKEN",
    "SESSION_SECRET",
    "DATA_DIR",
    "LOG_LEVEL",
    "AUTH_LIMIT_PER_IP",
    "AUTH_LIMIT_PER_KEY",
  ]) {
    delete env[name];
  }
  return { ...env, ...extra };
}

export type Finished = { code: number; out: string; err: string };

/** Runs a command to its end (stdin given, or none) and returns its exit code and both outputs in full. */
export async function runToEnd(
  cmd: string[],
  env: Record<string, string | undefined>,
  stdin?: string | undefined,
): Promise<Finished> {
  const proc = Bun.spawn(cmd, {
    env,
    stdin: stdin === undefined ? "ignore" : new Blob([stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, out, err] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  return { code, out, err };
}

/**
 * Shop processes as systemd runs them (`bun src/main.ts`), on the environment `env()` gives (read when each starts)
 * plus PORT; `killAll` ends whatever is still running, at the end of the test file.
 */
export function shopProcesses(env: () => Record<string, string>) {
  const started: Started[] = [];
  return {
    start(port: number): Started {
      const p = start(["bun", "src/main.ts"], cleanEnv({ ...env(), PORT: String(port) }));
      started.push(p);
      return p;
    },
    async killAll(): Promise<void> {
      for (const p of started) if (p.proc.exitCode === null) p.proc.kill("SIGKILL");
      await Promise.all(started.map((p) => p.proc.exited));
    },
  };
}
