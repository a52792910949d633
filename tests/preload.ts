import { afterAll } from "bun:test";
import { Redis } from "ioredis";
import postgres from "postgres";
import { connectDatabase } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { postgresAnswers, redisAnswers, startThrowawayPostgres, startThrowawayRedis } from "./helpers/servers.ts";

/**
 * Once per `bun test` run: find PostgreSQL and Redis, build a migrated template database that every test file
 * clones (a fresh, isolated database per file in ~100 ms), and remove all of it when the run ends.
 */
setLogLevel((process.env.TEST_LOG_LEVEL as "debug" | "info" | "warn" | "error" | undefined) ?? "error");

const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
const stops: (() => void)[] = [];

let adminUrl = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
if (!(await postgresAnswers(adminUrl))) {
  const pg = await startThrowawayPostgres();
  stops.push(pg.stop);
  adminUrl = pg.url;
}
let redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
if (!(await redisAnswers(redisUrl))) {
  const redis = await startThrowawayRedis();
  stops.push(redis.stop);
  redisUrl = redis.url;
}

const template = `mph_t_${runId}_tpl`;
const admin = postgres(adminUrl, { max: 2, onnotice: () => {} });
await admin.unsafe(`create database "${template}"`);
const templateUrl = withDatabase(adminUrl, template);
const templateSql = connectDatabase(templateUrl, { max: 1 });
await migrate(templateSql);
await templateSql.end();

process.env.MPH_TEST_RUN_ID = runId;
process.env.MPH_TEST_ADMIN_URL = adminUrl;
process.env.MPH_TEST_TEMPLATE = template;
process.env.MPH_TEST_REDIS_URL = redisUrl;

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

// Dropping databases waits for a checkpoint: seconds when other work keeps the disk busy.
afterAll(async () => {
  const dbs = await admin<{ datname: string }[]>`
    select datname from pg_database where datname like ${`mph_t_${runId}_%`}`;
  await admin.end();
  // Every DROP DATABASE waits for a checkpoint; dropped together they share checkpoints instead of queueing.
  const dropper = postgres(adminUrl, { max: 8, onnotice: () => {} });
  await Promise.all(dbs.map(({ datname }) => dropper.unsafe(`drop database if exists "${datname}" with (force)`)));
  await dropper.end();
  const redis = new Redis(redisUrl);
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `mphtest:${runId}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== "0");
  redis.disconnect();
  for (const stop of stops) stop();
  // Each DROP DATABASE waits for a checkpoint (seconds on a busy shared machine): the 5 s default is too short.
}, 120_000);
