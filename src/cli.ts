import { connectCache } from "./cache/cache.ts";
import { adminReset, adminsAdd, adminsRemove } from "./cli/admins.ts";
import { buildUpload, priceSet, productAdd, starsSet } from "./cli/catalogue.ts";
import { type Args, type CommandSpec, type Io, UsageError } from "./cli/command.ts";
import { migrateDatabase } from "./cli/database.ts";
import { keysCompensate, keysGenerate, keysImport, keysIssue, keysResetHwid } from "./cli/keys.ts";
import { apiPublicKey, apiRetireKey, apiRotateKey } from "./cli/licence.ts";
import { promoAdd, promoDisable, promoList } from "./cli/promos.ts";
import { botSet, settingsSet } from "./cli/settings.ts";
import { type Config, ConfigError, loadConfig } from "./config.ts";
import { connectDatabase, type Sql } from "./db/client.ts";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "./db/embedded.ts";
import { migrate } from "./db/migrate.ts";
import { DURATIONS } from "./lib/durations.ts";
import { logToStderr, setLogLevel } from "./lib/log.ts";
import { ShopError } from "./shop/errors.ts";
import { createShop } from "./shop/index.ts";

/**
 * `bun run cli <command>`: the operator's tools over SSH and in scripts (docs/operator.md#cli). Thin: every command
 * checks its arguments, then calls the same shop services as the panel. Changes are announced through the cache's
 * pub/sub, so running apps pick them up at once.
 *
 * Exit codes: 0 done; 1 the command ran and failed (one line on stderr); 2 wrong usage or bad configuration, in
 * which case nothing was touched. Results go to stdout (keys, passwords: what scripts read); everything else,
 * including log lines, to stderr.
 */

/** Every command, in the order `help` lists them. */
const COMMANDS: CommandSpec[] = [
  migrateDatabase,
  adminReset,
  productAdd,
  priceSet,
  starsSet,
  keysGenerate,
  keysImport,
  keysIssue,
  keysResetHwid,
  keysCompensate,
  buildUpload,
  promoAdd,
  promoList,
  promoDisable,
  botSet,
  settingsSet,
  adminsAdd,
  adminsRemove,
  apiPublicKey,
  apiRotateKey,
  apiRetireKey,
];

export function usage(): string {
  return [
    "usage: bun run cli <command> [arguments]",
    "",
    "commands:",
    ...COMMANDS.flatMap((c) => [`  ${c.usage}`, `      ${c.summary}`]),
    "  help",
    "      this text (`<command> --help` for one command)",
    "",
    `durations: ${DURATIONS.join(", ")} days. Product names with spaces go in quotes.`,
    "environment: DATABASE_URL (unset: the embedded database of `bun run dev` in DATA_DIR, while dev is not",
    "  running), REDIS_URL (announces changes to running apps), DATA_DIR, PUBLIC_URL, BASE_PATH.",
    "exit codes: 0 done, 1 failed, 2 wrong usage or configuration (nothing changed).",
  ].join("\n");
}

/** Positionals and `--name value` / `--name=value` options; `--` ends the options. */
function parseArgs(spec: CommandSpec, argv: string[]): Args {
  const positionals: string[] = [];
  const options = new Map<string, string>();
  const allowed = new Set(spec.options ?? []);
  let onlyPositionals = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (onlyPositionals || !arg.startsWith("--")) {
      positionals.push(arg);
      continue;
    }
    if (arg === "--") {
      onlyPositionals = true;
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (!allowed.has(name)) throw new UsageError(`unknown option --${name}`, spec);
    if (options.has(name)) throw new UsageError(`--${name} given twice`, spec);
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`, spec);
    }
    options.set(name, value);
  }
  const { min, max } = spec.positionals;
  if (positionals.length < min) throw new UsageError("missing arguments", spec);
  if (positionals.length > max) throw new UsageError(`unexpected argument "${positionals[max]}"`, spec);
  return { positionals, options };
}

/** The one line that explains a failure to the operator. */
function failureLine(error: unknown): string {
  if (error instanceof ShopError) return error.message;
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
  const message = error instanceof Error ? error.message : String(error);
  if (["ECONNREFUSED", "ENOTFOUND", "CONNECT_TIMEOUT", "EHOSTUNREACH", "3D000", "28P01", "28000"].includes(code)) {
    return `cannot reach the database: ${message}`;
  }
  return message.split("\n")[0]!;
}

export async function runCli(
  argv: string[],
  io: Io,
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "help" || name === "--help" || name === "-h") {
    io.out(usage());
    return 0;
  }
  const spec = COMMANDS.find((c) => c.name === name);
  let input: unknown;
  try {
    if (!spec) throw new UsageError(name === undefined ? "no command given" : `unknown command "${name}"`);
    if (rest.includes("--help") && !rest.includes("--")) {
      io.out(`usage: bun run cli ${spec.usage}\n  ${spec.summary}`);
      return 0;
    }
    input = spec.parse(parseArgs(spec, rest));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`error: ${error.message}`);
    const forCommand = error.command ?? spec;
    io.err(forCommand ? `usage: bun run cli ${forCommand.usage}` : usage());
    return 2;
  }

  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`config error: ${error.message}`);
      return 2;
    }
    throw error;
  }
  if (!env.LOG_LEVEL) setLogLevel("warn");

  let embedded: EmbeddedDatabase | null = null;
  let sql: Sql | null = null;
  const cache = connectCache(config.redisUrl, config.redisPrefix);
  try {
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      io.err(`note: DATABASE_URL is not set; using the embedded development database in ${config.dataDir}`);
      embedded = await startEmbeddedDatabase(config.dataDir);
      databaseUrl = embedded.url;
    }
    sql = connectDatabase(databaseUrl, { max: embedded ? 1 : 2 });
    // Announcements made before Redis has connected would be dropped; a missing Redis only delays the command.
    if (config.redisUrl && !(await cache.ready(3_000))) {
      io.err("warning: Redis does not answer; running apps will not hear of this change until they restart");
    }
    // A plain query first: an unreachable database fails here at once (after a failed reserve(), used by the
    // migration lock, the driver holds end() for its whole timeout).
    await sql`select 1`;
    if (!spec.migrates) await migrate(sql);
    const shop = createShop({ sql, cache, config });
    return await spec.run({ shop, sql, config, io }, input as never);
  } catch (error) {
    io.err(`error: ${failureLine(error)}`);
    return 1;
  } finally {
    await cache.close();
    await sql?.end({ timeout: 5 });
    await embedded?.stop();
  }
}

if (import.meta.main) {
  logToStderr();
  // Writes are chained and awaited before exiting, so a pipe reader gets every key even when stdout is slow.
  let writes = Promise.resolve();
  const write = (target: typeof Bun.stdout, line: string) => {
    writes = writes.then(async () => {
      await Bun.write(target, `${line}\n`);
    });
  };
  const io: Io = {
    out: (line) => write(Bun.stdout, line),
    err: (line) => write(Bun.stderr, line),
    readStdin: async () => await Bun.stdin.text(),
  };
  runCli(process.argv.slice(2), io)
    .catch((error) => {
      io.err(`error: ${failureLine(error)}`);
      return 1;
    })
    .then(async (code) => {
      await writes;
      process.exit(code);
    });
}
