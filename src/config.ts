import { isIP } from "node:net";
import * as v from "valibot";

/**
 * The environment (docs/operator.md#configuration), parsed once at start. A bad value stops the process with one line
 * that names the variable, so a typo in /etc/morpheus-shop.env is found from `journalctl` at a glance.
 */
export const DEFAULT_ANYPAY_IPS = ["185.162.128.38", "185.162.128.39", "185.162.128.88"];

const url = (protocols: string[]) =>
  v.pipe(
    v.string(),
    v.check(
      (s) => {
        try {
          return protocols.includes(new URL(s).protocol);
        } catch {
          return false;
        }
      },
      `must be a URL starting with ${protocols.map((p) => `${p}//`).join(" or ")}`,
    ),
  );

const port = v.pipe(
  v.string(),
  v.regex(/^\d{1,5}$/, "must be a port number"),
  v.transform(Number),
  v.number(),
  v.minValue(1, "must be 1–65535"),
  v.maxValue(65535, "must be 1–65535"),
);

const wholeNumber = (max: number) =>
  v.pipe(
    v.string(),
    v.regex(/^\d{1,10}$/, "must be a whole number"),
    v.transform(Number),
    v.maxValue(max, `must be at most ${max}`),
  );

const positiveInt = (max: number) =>
  v.pipe(
    v.string(),
    v.regex(/^\d{1,10}$/, "must be a whole number"),
    v.transform(Number),
    v.minValue(1, "must be at least 1"),
    v.maxValue(max, `must be at most ${max}`),
  );

/** "1.2.3.4, ::1" → ["1.2.3.4", "::1"]; every entry must be an IP address (no names, no ranges). */
const ipList = v.pipe(
  v.string(),
  v.transform((s) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean),
  ),
  v.check(
    (list) => list.length > 0 && list.every((ip) => isIP(ip) !== 0),
    "must be a comma-separated list of IP addresses",
  ),
);

const EnvSchema = v.object({
  DATABASE_URL: v.optional(url(["postgres:", "postgresql:"])),
  REDIS_URL: v.optional(url(["redis:", "rediss:"])),
  REDIS_PREFIX: v.optional(
    v.pipe(v.string(), v.regex(/^[\w:.-]{1,64}$/, "must be 1–64 of A-Z a-z 0-9 _ : . - (e.g. mph:)")),
    "mph:",
  ),
  HOST: v.optional(v.pipe(v.string(), v.minLength(1)), "127.0.0.1"),
  PORT: v.optional(port, "3000"),
  BASE_PATH: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\/[^?#%]*[^/?#%]$|^$/, "must start with / and not end with / (e.g. /Morpheus Private)"),
    ),
    "/Morpheus Private",
  ),
  PUBLIC_URL: v.optional(url(["http:", "https:"])),
  TELEGRAM_API_URL: v.optional(url(["http:", "https:"]), "https://api.telegram.org"),
  BOT_TOKEN: v.optional(v.pipe(v.string(), v.regex(/^\d+:[\w-]{20,}$/, "must look like 123456:ABC… from BotFather"))),
  BOT_WEBHOOK_URL: v.optional(url(["https:", "http:"])),
  BOT_WEBHOOK_SECRET: v.optional(v.pipe(v.string(), v.regex(/^[\w-]{16,256}$/, "must be 16–256 of A-Z a-z 0-9 _ -"))),
  ANYPAY_MERCHANT_ID: v.optional(v.pipe(v.string(), v.regex(/^\d{1,20}$/, "must be the numeric merchant id"))),
  ANYPAY_SECRET_KEY: v.optional(v.pipe(v.string(), v.minLength(1))),
  ANYPAY_ALLOWED_IPS: v.optional(ipList),
  TRUSTED_PROXIES: v.optional(ipList),
  SESSION_SECRET: v.optional(v.pipe(v.string(), v.minLength(32, "must be at least 32 characters"))),
  DATA_DIR: v.optional(v.pipe(v.string(), v.minLength(1)), "./data"),
  RESERVATION_MINUTES: v.optional(positiveInt(24 * 60), "30"),
  AUTH_LIMIT_PER_IP: v.optional(positiveInt(1_000_000_000), "600"),
  AUTH_LIMIT_PER_KEY: v.optional(positiveInt(1_000_000_000), "120"),
  SHUTDOWN_DRAIN_MS: v.optional(wholeNumber(10_000), "3000"),
  LOG_LEVEL: v.optional(
    v.picklist(["debug", "info", "warn", "error"], "must be one of debug, info, warn, error"),
    "info",
  ),
});

export type Config = {
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  /** Namespace of our keys and channels, so two shops (or test runs) can share one Redis. */
  redisPrefix: string;
  host: string;
  port: number;
  basePath: string;
  publicUrl: string;
  telegramApiUrl: string;
  botToken: string | undefined;
  /** Set: Telegram delivers updates to this URL (webhook mode). Unset: the bot long-polls. */
  botWebhookUrl: string | undefined;
  botWebhookSecret: string | undefined;
  anypayMerchantId: string | undefined;
  anypaySecretKey: string | undefined;
  anypayAllowedIps: string[];
  /** Direct peers whose X-Forwarded-For we believe: the local Caddy. */
  trustedProxies: string[];
  sessionSecret: string | undefined;
  dataDir: string;
  reservationMinutes: number;
  /** Auth API calls allowed per minute from one IP, and for one key. */
  authLimitPerIp: number;
  authLimitPerKey: number;
  logLevel: "debug" | "info" | "warn" | "error";
  /**
   * `bun run start` on SIGTERM: how long the process keeps serving while telling Caddy's probe it is leaving, so the
   * balancer has moved the calls to the other processes before this one closes its port. Longer than Caddy's
   * health_interval (2 s, Caddyfile).
   */
  shutdownDrainMs: number;
};

export class ConfigError extends Error {}

/** Parses the environment; throws ConfigError whose message is the one line to print. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(EnvSchema.entries)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== "") input[key] = value.trim();
  }
  const result = v.safeParse(EnvSchema, input);
  if (!result.success) {
    const issue = result.issues[0];
    const name = issue.path?.[0]?.key;
    throw new ConfigError(`${String(name ?? "environment")}: ${issue.message}`);
  }
  const e = result.output;
  const host = e.HOST;
  const portNumber = e.PORT;
  const publicUrl = (e.PUBLIC_URL ?? `http://${host.includes(":") ? `[${host}]` : host}:${portNumber}`).replace(
    /\/+$/,
    "",
  );
  return {
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    host,
    port: portNumber,
    basePath: e.BASE_PATH,
    publicUrl,
    telegramApiUrl: e.TELEGRAM_API_URL.replace(/\/+$/, ""),
    botToken: e.BOT_TOKEN,
    botWebhookUrl: e.BOT_WEBHOOK_URL,
    botWebhookSecret: e.BOT_WEBHOOK_SECRET,
    anypayMerchantId: e.ANYPAY_MERCHANT_ID,
    anypaySecretKey: e.ANYPAY_SECRET_KEY,
    anypayAllowedIps: e.ANYPAY_ALLOWED_IPS ?? DEFAULT_ANYPAY_IPS,
    trustedProxies: e.TRUSTED_PROXIES ?? ["127.0.0.1", "::1"],
    sessionSecret: e.SESSION_SECRET,
    dataDir: e.DATA_DIR,
    reservationMinutes: e.RESERVATION_MINUTES,
    authLimitPerIp: e.AUTH_LIMIT_PER_IP,
    authLimitPerKey: e.AUTH_LIMIT_PER_KEY,
    logLevel: e.LOG_LEVEL,
    shutdownDrainMs: e.SHUTDOWN_DRAIN_MS,
  };
}

/** What `bun run start` needs on top of the defaults: production never falls back to embedded stores. */
export function requireProduction(config: Config): void {
  if (!config.databaseUrl) throw new ConfigError("DATABASE_URL: must be set for `bun run start`");
  if (!config.redisUrl) throw new ConfigError("REDIS_URL: must be set for `bun run start`");
  if (!config.sessionSecret)
    throw new ConfigError("SESSION_SECRET: must be set for `bun run start` (setup.sh makes one)");
}
