/**
 * One JSON object per line on stdout: journald keeps it, `jq` reads it. Callers pass facts, never secrets or whole
 * keys (use maskKey).
 */
export type LogFields = Record<string, unknown>;
type Level = "debug" | "info" | "warn" | "error";

const LEVELS: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
let threshold = LEVELS[(process.env.LOG_LEVEL as Level | undefined) ?? "info"] ?? LEVELS.info;

export function setLogLevel(level: Level): void {
  threshold = LEVELS[level];
}

let everythingToStderr = false;

/** The CLI keeps stdout for its own output (keys, passwords) that scripts read; its log lines go to stderr. */
export function logToStderr(): void {
  everythingToStderr = true;
}

function write(level: Level, msg: string, fields?: LogFields): void {
  if (LEVELS[level] < threshold) return;
  const line: LogFields = { t: new Date().toISOString(), level, msg, ...fields };
  for (const [k, v] of Object.entries(line)) {
    if (v instanceof Error) line[k] = v.message;
  }
  const text = JSON.stringify(line, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
  if (everythingToStderr || level === "error" || level === "warn") console.error(text);
  else console.log(text);
}

export const log = {
  debug: (msg: string, fields?: LogFields) => write("debug", msg, fields),
  info: (msg: string, fields?: LogFields) => write("info", msg, fields),
  warn: (msg: string, fields?: LogFields) => write("warn", msg, fields),
  error: (msg: string, fields?: LogFields) => write("error", msg, fields),
};
