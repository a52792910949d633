import type { Config } from "../config.ts";
import type { Sql } from "../db/client.ts";
import { DURATIONS, type DurationDays, isDuration } from "../lib/durations.ts";
import { keyStringProblem } from "../lib/keys.ts";
import type { Shop } from "../shop/index.ts";
import { productNameProblem } from "../shop/products/products.ts";
import { parseTelegramId } from "../shop/users/admins.ts";

/**
 * What every command of `bun run cli` is made of (src/cli.ts runs them): its usage, a check of its arguments that
 * touches nothing, and what it does with the shop. The commands live by area beside this file.
 */

/** Wrong arguments: the reason and the command's usage are printed, exit 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: CommandSpec,
  ) {
    super(message);
  }
}

export type Args = { positionals: string[]; options: Map<string, string> };

export type Io = {
  out: (line: string) => void;
  err: (line: string) => void;
  /** The whole of stdin, for keys:import and `--token -`. */
  readStdin: () => Promise<string>;
};

export type Context = { shop: Shop; sql: Sql; config: Config; io: Io };

export type CommandSpec = {
  name: string;
  usage: string;
  summary: string;
  positionals: { min: number; max: number };
  options?: string[];
  /** migrate applies migrations itself; every other command finds the schema up to date first. */
  migrates?: boolean;
  /** Checks and converts the arguments without touching any store; throws UsageError. */
  parse: (args: Args) => unknown;
  run: (ctx: Context, input: never) => Promise<number>;
};

export function command<T>(
  spec: Omit<CommandSpec, "parse" | "run"> & {
    parse: (args: Args) => T;
    run: (ctx: Context, input: T) => Promise<number>;
  },
): CommandSpec {
  return spec as CommandSpec;
}

// Argument checks: each throws a UsageError that names the argument.

export function days(text: string): DurationDays {
  const n = /^\d{1,3}$/.test(text) ? Number(text) : Number.NaN;
  if (!isDuration(n)) throw new UsageError(`days must be one of ${DURATIONS.join(", ")}, got "${text}"`);
  return n;
}

export function wholeNumber(text: string, name: string, min: number, max: number): number {
  const n = /^\d{1,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return n;
}

export function telegramId(text: string): number {
  const id = /^\d+$/.test(text) ? parseTelegramId(text) : null;
  if (id === null) throw new UsageError(`telegram id must be a positive whole number, got "${text}"`);
  return id;
}

export function bool(text: string, name: string): boolean {
  const t = text.toLowerCase();
  if (t === "true") return true;
  if (t === "false") return false;
  throw new UsageError(`--${name} must be true or false, got "${text}"`);
}

export function productName(text: string): string {
  const problem = productNameProblem(text);
  if (problem) throw new UsageError(`product name: ${problem}`);
  return text;
}

export function keyString(text: string): string {
  const problem = keyStringProblem(text);
  if (problem) throw new UsageError(`key: ${problem}`);
  return text;
}
