import { connectCache } from "./cache/cache.ts";
import { type Config, ConfigError, loadConfig } from "./config.ts";
import { connectDatabase, type Sql } from "./db/client.ts";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "./db/embedded.ts";
import { migrate } from "./db/migrate.ts";
import { DURATIONS, type DurationDays, isDuration } from "./lib/durations.ts";
import { keyFaultText, keyStringProblem } from "./lib/keys.ts";
import { logToStderr, setLogLevel } from "./lib/log.ts";
import { LOGIN_PATTERN } from "./shop/accounts/accounts.ts";
import { ShopError } from "./shop/errors.ts";
import { createShop, type Shop } from "./shop/index.ts";
import { MAX_GENERATE } from "./shop/keys/keys.ts";
import { productNameProblem } from "./shop/products/products.ts";
import { BOT_TOKEN_PATTERN, type SettingsPatch } from "./shop/settings/settings.ts";
import { parseTelegramId } from "./shop/users/admins.ts";

/**
 * `bun run cli <command>`: the operator's tools over SSH and in scripts (SPEC §10). Thin: every command checks its
 * arguments, then calls the same shop services as the panel. Changes are announced through the cache's pub/sub, so
 * running apps pick them up at once.
 *
 * Exit codes: 0 done; 1 the command ran and failed (one line on stderr); 2 wrong usage or bad configuration, in
 * which case nothing was touched. Results go to stdout (keys, passwords: what scripts read); everything else,
 * including log lines, to stderr.
 */

/** Wrong arguments: the reason and the command's usage are printed, exit 2. */
class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: CommandSpec,
  ) {
    super(message);
  }
}

type Args = { positionals: string[]; options: Map<string, string> };

type Io = {
  out: (line: string) => void;
  err: (line: string) => void;
  /** The whole of stdin, for keys:import and `--token -`. */
  readStdin: () => Promise<string>;
};

type Context = { shop: Shop; sql: Sql; config: Config; io: Io };

type CommandSpec = {
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

function command<T>(
  spec: Omit<CommandSpec, "parse" | "run"> & {
    parse: (args: Args) => T;
    run: (ctx: Context, input: T) => Promise<number>;
  },
): CommandSpec {
  return spec as CommandSpec;
}

// --- argument checks: each throws a UsageError that names the argument --------------------------------------------

function days(text: string): DurationDays {
  const n = /^\d{1,3}$/.test(text) ? Number(text) : Number.NaN;
  if (!isDuration(n)) throw new UsageError(`days must be one of ${DURATIONS.join(", ")}, got "${text}"`);
  return n;
}

function wholeNumber(text: string, name: string, min: number, max: number): number {
  const n = /^\d{1,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return n;
}

function telegramId(text: string): number {
  const id = /^\d+$/.test(text) ? parseTelegramId(text) : null;
  if (id === null) throw new UsageError(`telegram id must be a positive whole number, got "${text}"`);
  return id;
}

function bool(text: string, name: string): boolean {
  const t = text.toLowerCase();
  if (t === "true") return true;
  if (t === "false") return false;
  throw new UsageError(`--${name} must be true or false, got "${text}"`);
}

function productName(text: string): string {
  const problem = productNameProblem(text);
  if (problem) throw new UsageError(`product name: ${problem}`);
  return text;
}

function keyString(text: string): string {
  const problem = keyStringProblem(text);
  if (problem) throw new UsageError(`key: ${problem}`);
  return text;
}

// --- the commands ----------------------------------------------------------------------------------------------------

const COMMANDS: CommandSpec[] = [
  command({
    name: "migrate",
    usage: "migrate",
    summary: "apply pending database migrations (safe from several processes at once)",
    positionals: { min: 0, max: 0 },
    migrates: true,
    parse: () => null,
    run: async ({ sql, io }) => {
      const result = await migrate(sql);
      for (const file of result.applied) io.out(`applied ${file}`);
      io.out(`database is up to date (${result.current ?? "no migrations"})`);
      return 0;
    },
  }),
  command({
    name: "admin:reset",
    usage: "admin:reset [login]",
    summary: "create the panel account or give it a new password (login: admin by default)",
    positionals: { min: 0, max: 1 },
    parse: ({ positionals: [login = "admin"] }) => {
      if (!LOGIN_PATTERN.test(login)) throw new UsageError("login must be 1–64 of A-Z a-z 0-9 . _ -");
      return login;
    },
    run: async ({ shop, io }, login) => {
      const account = await shop.accounts.reset(login);
      io.out(`login: ${account.login}`);
      io.out(`password: ${account.password}`);
      return 0;
    },
  }),
  command({
    name: "product:add",
    usage: "product:add <name> [--description <text>]",
    summary: "create a product (the name is also its auth API address)",
    positionals: { min: 1, max: 1 },
    options: ["description"],
    parse: ({ positionals: [name], options }) => ({
      name: productName(name!),
      description: options.get("description") ?? "",
    }),
    run: async ({ shop, config, io }, input) => {
      const product = await shop.products.create(input);
      io.out(`product added: ${product.name}`);
      io.out(`auth API: ${config.publicUrl}${encodeURI(config.basePath)}/api/${encodeURIComponent(product.name)}/auth`);
      return 0;
    },
  }),
  command({
    name: "price:set",
    usage: "price:set <product> <days> <rub>",
    summary: "set the price of a duration in whole roubles; 0 or none takes it off sale",
    positionals: { min: 3, max: 3 },
    parse: ({ positionals: [product, d, rub] }) => ({
      product: product!,
      days: days(d!),
      rub: rub === "none" ? 0 : wholeNumber(rub!, "rub", 0, 10_000_000),
    }),
    run: async ({ shop, io }, input) => {
      const product = await shop.products.require(input.product);
      await shop.products.setPrice(product.id, input.days, input.rub);
      io.out(`${product.name}, ${input.days} days: ${input.rub === 0 ? "off sale" : `${input.rub} RUB`}`);
      return 0;
    },
  }),
  command({
    name: "keys:generate",
    usage: "keys:generate <product> <days> <count>",
    summary: `generate MPH-XXXXX-XXXXX-XXXXX keys (at most ${MAX_GENERATE}); prints them one per line`,
    positionals: { min: 3, max: 3 },
    parse: ({ positionals: [product, d, count] }) => ({
      product: product!,
      days: days(d!),
      count: wholeNumber(count!, "count", 1, MAX_GENERATE),
    }),
    run: async ({ shop, io }, input) => {
      const product = await shop.products.require(input.product);
      const keys = await shop.keys.generate(product.id, input.days, input.count);
      io.out(keys.join("\n"));
      return 0;
    },
  }),
  command({
    name: "keys:import",
    usage: "keys:import <product> <days> < keys.txt",
    summary: "import keys from stdin, one per line; prints `imported N, duplicates M`",
    positionals: { min: 2, max: 2 },
    parse: ({ positionals: [product, d] }) => ({ product: product!, days: days(d!) }),
    run: async ({ shop, io }, input) => {
      const product = await shop.products.require(input.product);
      if (process.stdin.isTTY) io.err("paste the keys, one per line, then press Ctrl-D");
      const result = await shop.keys.importText(product.id, input.days, await io.readStdin());
      io.out(`imported ${result.imported}, duplicates ${result.duplicates}`);
      if (result.invalid.length === 0) return 0;
      for (const bad of result.invalid.slice(0, 20)) io.err(`line ${bad.line}: ${keyFaultText(bad.fault)}`);
      if (result.invalid.length > 20) io.err(`… and ${result.invalid.length - 20} more`);
      io.err(`error: ${result.invalid.length} invalid line(s) skipped; the other keys were imported`);
      return 1;
    },
  }),
  command({
    name: "keys:issue",
    usage: "keys:issue <product> <days> [--to <telegram id>]",
    summary: "sell one available key without payment (gift, support case); prints it",
    positionals: { min: 2, max: 2 },
    options: ["to"],
    parse: ({ positionals: [product, d], options }) => {
      const to = options.get("to");
      return { product: product!, days: days(d!), to: to === undefined ? undefined : telegramId(to) };
    },
    run: async ({ shop, io }, input) => {
      const product = await shop.products.require(input.product);
      const key = await shop.keys.issue(product.id, input.days, input.to);
      io.out(key.key);
      return 0;
    },
  }),
  command({
    name: "keys:reset-hwid",
    usage: "keys:reset-hwid <key>",
    summary: "clear a sold key's HWID so the next PC binds; the expiry stays",
    positionals: { min: 1, max: 1 },
    parse: ({ positionals: [key] }) => keyString(key!),
    run: async ({ shop, io }, key) => {
      const record = await shop.keys.resetHwid({ key });
      const expiry = record.expiresAt ? `expires ${record.expiresAt.toISOString()}` : "not activated yet";
      io.out(`HWID cleared: ${record.key} (${expiry})`);
      return 0;
    },
  }),
  command({
    name: "build:upload",
    usage: "build:upload <product> <zip path>",
    summary: "set the product's build: a zip of at most 50 MB, sent to buyers with their key",
    positionals: { min: 2, max: 2 },
    parse: ({ positionals: [product, path] }) => ({ product: product!, path: path! }),
    run: async ({ shop, io }, input) => {
      const product = await shop.products.require(input.product);
      const build = await shop.builds.storeFile(product.id, input.path);
      io.out(`build uploaded: ${build.name}, ${build.size} bytes, sha256 ${build.sha256}`);
      return 0;
    },
  }),
  command({
    name: "bot:set",
    usage: "bot:set [--token <token>|-] [--enabled true|false] [--maintenance true|false]",
    summary: "bot settings (`--token -` reads the token from stdin, keeping it out of the shell history)",
    positionals: { min: 0, max: 0 },
    options: ["token", "enabled", "maintenance"],
    parse: ({ options }) => {
      if (options.size === 0) throw new UsageError("give at least one of --token, --enabled, --maintenance");
      const token = options.get("token");
      if (token !== undefined && token !== "-" && !BOT_TOKEN_PATTERN.test(token)) {
        throw new UsageError("--token must look like 123456789:AA… (from @BotFather)");
      }
      const enabled = options.get("enabled");
      const maintenance = options.get("maintenance");
      return {
        token,
        enabled: enabled === undefined ? undefined : bool(enabled, "enabled"),
        maintenance: maintenance === undefined ? undefined : bool(maintenance, "maintenance"),
      };
    },
    run: async ({ shop, io }, input) => {
      const patch: SettingsPatch = {};
      if (input.token !== undefined) {
        const token = input.token === "-" ? (await io.readStdin()).trim() : input.token;
        if (!BOT_TOKEN_PATTERN.test(token)) {
          io.err("error: the token from stdin must look like 123456789:AA… (from @BotFather)");
          return 2;
        }
        patch.botToken = token;
      }
      if (input.enabled !== undefined) patch.botEnabled = input.enabled;
      if (input.maintenance !== undefined) patch.maintenance = input.maintenance;
      const s = await shop.settings.update(patch);
      io.out(
        `bot: ${s.botEnabled ? "on" : "off"}, maintenance: ${s.maintenance ? "on" : "off"}, token: ${s.botToken ? "set" : "not set"}`,
      );
      return 0;
    },
  }),
  command({
    name: "admins:add",
    usage: "admins:add <telegram id>",
    summary: "let a Telegram user use the bot's admin functions",
    positionals: { min: 1, max: 1 },
    parse: ({ positionals: [id] }) => telegramId(id!),
    run: async ({ shop, io }, id) => {
      await shop.admins.add(id);
      io.out(`admin added: ${id}`);
      return 0;
    },
  }),
  command({
    name: "admins:remove",
    usage: "admins:remove <telegram id>",
    summary: "take the bot's admin functions away from a Telegram user",
    positionals: { min: 1, max: 1 },
    parse: ({ positionals: [id] }) => telegramId(id!),
    run: async ({ shop, io }, id) => {
      await shop.admins.remove(id);
      io.out(`admin removed: ${id}`);
      return 0;
    },
  }),
  command({
    name: "api:public-key",
    usage: "api:public-key",
    summary: "print the newest signing key's id and public key (base64 of the raw 32 bytes): what loaders pin",
    positionals: { min: 0, max: 0 },
    parse: () => null,
    run: async ({ shop, io }) => {
      const active = (await shop.signing.list()).filter((k) => k.retiredAt === null);
      const [newest] = active;
      if (!newest) {
        io.err("error: this database has no signing key yet; `bun run cli migrate` creates one");
        return 1;
      }
      io.out(`key_id: ${newest.keyId}`);
      io.out(`public_key: ${newest.publicKey}`);
      if (active.length > 1) {
        io.err(`note: ${active.length} keys sign every answer now: ${active.map((k) => k.keyId).join(", ")}`);
      }
      return 0;
    },
  }),
  command({
    name: "api:rotate-key",
    usage: "api:rotate-key",
    summary: "add a new signing key; it signs every answer from now on, beside the old ones, until they are retired",
    positionals: { min: 0, max: 0 },
    parse: () => null,
    run: async ({ shop, io }) => {
      const added = await shop.signing.rotate();
      io.out(`key_id: ${added.keyId}`);
      io.out(`public_key: ${added.publicKey}`);
      const older = (await shop.signing.list()).filter((k) => k.retiredAt === null && k.keyId !== added.keyId);
      if (older.length > 0) {
        io.err(
          `note: answers are now signed by ${[added, ...older].map((k) => k.keyId).join(", ")} (newest first). ` +
            "Ship loaders that pin the new key; once the old loaders are gone, retire the old key: " +
            older.map((k) => `bun run cli api:retire-key ${k.keyId}`).join("; "),
        );
      }
      return 0;
    },
  }),
  command({
    name: "api:retire-key",
    usage: "api:retire-key <key id>",
    summary: "stop signing with a key (loaders that pin only it stop working); the last key cannot be retired",
    positionals: { min: 1, max: 1 },
    parse: ({ positionals: [id] }) => {
      const keyId = id!.toLowerCase();
      if (!/^[0-9a-f]{16}$/.test(keyId)) {
        throw new UsageError(`key id must be 16 hex characters (as api:public-key prints it), got "${id}"`);
      }
      return keyId;
    },
    run: async ({ shop, io }, keyId) => {
      const { retired, wasRetired } = await shop.signing.retire(keyId);
      io.out(
        wasRetired
          ? `already retired: ${retired.keyId} (since ${retired.retiredAt!.toISOString()})`
          : `retired: ${retired.keyId}`,
      );
      const active = (await shop.signing.list()).filter((k) => k.retiredAt === null);
      io.err(`note: answers are signed by ${active.map((k) => k.keyId).join(", ")}`);
      return 0;
    },
  }),
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
