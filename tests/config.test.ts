import { expect, test } from "bun:test";
import { ConfigError, DEFAULT_ANYPAY_IPS, loadConfig, requireProduction } from "../src/config.ts";

const problem = (env: Record<string, string>) => {
  try {
    loadConfig(env);
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
};

test("with nothing set, the defaults of docs/operator.md#configuration apply", () => {
  const c = loadConfig({});
  expect(c).toMatchObject({
    host: "127.0.0.1",
    port: 3000,
    basePath: "/Morpheus Private",
    publicUrl: "http://127.0.0.1:3000",
    telegramApiUrl: "https://api.telegram.org",
    anypayAllowedIps: DEFAULT_ANYPAY_IPS,
    dataDir: "./data",
    databaseUrl: undefined,
    redisUrl: undefined,
    redisPrefix: "mph:",
  });
  expect(DEFAULT_ANYPAY_IPS).toEqual(["185.162.128.38", "185.162.128.39", "185.162.128.88"]);
});

test("each bad value is named in one line that says what is wrong", () => {
  const cases: [Record<string, string>, string][] = [
    [{ PORT: "http" }, "PORT: must be a port number"],
    [{ PORT: "70000" }, "PORT: must be 1–65535"],
    [{ DATABASE_URL: "mysql://x" }, "DATABASE_URL: must be a URL starting with postgres:// or postgresql://"],
    [{ REDIS_URL: "localhost:6379" }, "REDIS_URL: must be a URL starting with redis:// or rediss://"],
    [{ BASE_PATH: "Morpheus Private/" }, "BASE_PATH: must start with / and not end with /"],
    [{ PUBLIC_URL: "shop.example.com" }, "PUBLIC_URL: must be a URL starting with http:// or https://"],
    [{ BOT_TOKEN: "abc" }, "BOT_TOKEN: must look like 123456:ABC… from BotFather"],
    [{ AUTH_LIMIT_PER_IP: "lots" }, "AUTH_LIMIT_PER_IP: must be a whole number"],
    [{ AUTH_LIMIT_PER_KEY: "0" }, "AUTH_LIMIT_PER_KEY: must be at least 1"],
    [{ SESSION_SECRET: "short" }, "SESSION_SECRET: must be at least 32 characters"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL: must be one of debug, info, warn, error"],
    [{ ANYPAY_ALLOWED_IPS: "185.162.128.38, evil.example" }, "ANYPAY_ALLOWED_IPS: must be a comma-separated"],
  ];
  cases.push(
    [
      { ANYPAY_ALLOWED_IPS: "185.162.128.38, 999.1" },
      "ANYPAY_ALLOWED_IPS: must be a comma-separated list of IP addresses",
    ],
    [{ TRUSTED_PROXIES: "localhost" }, "TRUSTED_PROXIES: must be a comma-separated list of IP addresses"],
  );
  for (const [env, expected] of cases) {
    const message = problem(env);
    expect(message).toStartWith(expected);
    expect(message).not.toContain("\n");
  }
});

test("IP lists accept IPv4 and IPv6 with spaces around commas; PUBLIC_URL loses its trailing slash", () => {
  const c = loadConfig({ ANYPAY_ALLOWED_IPS: " 10.0.0.1 ,::1,", PUBLIC_URL: "https://shop.example.com/" });
  expect(c.anypayAllowedIps).toEqual(["10.0.0.1", "::1"]);
  expect(c.publicUrl).toBe("https://shop.example.com");
});

test("production needs DATABASE_URL, REDIS_URL and SESSION_SECRET, and says which is missing", () => {
  const missing = (env: Record<string, string>) => {
    try {
      requireProduction(loadConfig(env));
      return null;
    } catch (error) {
      return (error as Error).message;
    }
  };
  expect(missing({})).toStartWith("DATABASE_URL:");
  expect(missing({ DATABASE_URL: "postgres://x/y" })).toStartWith("REDIS_URL:");
  expect(missing({ DATABASE_URL: "postgres://x/y", REDIS_URL: "redis://x" })).toStartWith("SESSION_SECRET:");
  expect(
    missing({ DATABASE_URL: "postgres://x/y", REDIS_URL: "redis://x", SESSION_SECRET: "s".repeat(32) }),
  ).toBeNull();
});
