import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { RedisCache } from "../src/cache/cache.ts";
import { connectDatabase, type Sql } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { buildHttpApp } from "../src/server.ts";
import { followChanges } from "../src/shop/changes.ts";
import { createShop } from "../src/shop/index.ts";
import { ensureProduct, eventually, soldKey } from "./helpers/licence.ts";
import { cleanEnv, type Finished, runToEnd, type Started, shopProcesses } from "./helpers/process.ts";
import { freePort } from "./helpers/servers.ts";
import { createTestShop, type TestShop, testDatabase, testRedisPrefix } from "./helpers/shop.ts";
import { type PublishedKey, rawAnswer, signerIds, verifiedBy } from "./helpers/signatures.ts";

// These tests start shop processes and the CLI: on a loaded shared machine that takes seconds. Hang protection only.
setDefaultTimeout(90_000);

/**
 * The signing keys' life (docs/licence-api.md#rotating-the-key): made by `migrate`, kept in the database (so in backups
 * and shared by every process), rotated and retired without a restart, and never shown to anyone.
 */

const P = "Rotated";
const closers: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

type Peer = {
  request: (path: string, init?: RequestInit) => Promise<Response>;
  shop: ReturnType<typeof createShop>;
};

/** Another app process in miniature on the same database: its own pools, and the Redis namespace given. */
async function peer(t: TestShop, redisPrefix: string, reloadEveryMs?: number): Promise<Peer> {
  const sql = connectDatabase(t.databaseUrl, { max: 4 });
  const cache = new RedisCache(t.redisUrl, redisPrefix);
  await cache.ready(2_000);
  const shop = createShop({ sql, cache, config: t.config });
  const stop = await followChanges(shop, { reloadEveryMs });
  const app = buildHttpApp(shop, t.config);
  closers.push(async () => {
    await stop();
    await cache.close();
    await sql.end({ timeout: 2 });
  });
  const base = `http://localhost${encodeURI(t.config.basePath)}`;
  return { shop, request: (path, init) => app.handle(new Request(`${base}${path}`, init)) };
}

async function published(request: Peer["request"]): Promise<PublishedKey[]> {
  return ((await (await request("/api/public-key")).json()) as { keys: PublishedKey[] }).keys;
}

/** The key ids that sign an answer of this process, as a loader sees them. */
async function signers(request: Peer["request"]): Promise<string[]> {
  const answer = await rawAnswer(await request(`/api/${P}/auth?key=NOPE&uuid=PC`));
  return signerIds(answer.signature);
}

describe("rotation in a running shop", () => {
  let t: TestShop;
  let a: Peer;
  let b: Peer;
  beforeAll(async () => {
    t = await createTestShop();
    closers.push(t.close);
    await ensureProduct(t, P);
    a = { request: t.request, shop: t.shop };
    b = await peer(t, t.redisPrefix);
  });

  test("a new key signs beside the old one in every process at once, newest first; retired, it stops", async () => {
    const [first] = await published(a.request);
    expect(await signers(b.request)).toEqual([first!.key_id]);

    const added = await a.shop.signing.rotate();
    // The other process hears of it through Redis: no restart, no wait for a periodic reload.
    await eventually(async () => (await signers(b.request)).length === 2, 5_000);
    for (const p of [a, b]) {
      expect(await signers(p.request)).toEqual([added.keyId, first!.key_id]);
      const keys = await published(p.request);
      expect(keys.map((k) => k.key_id)).toEqual([added.keyId, first!.key_id]);
      // Both signatures verify: a loader that pins either key accepts the answer.
      const key = await soldKey(t, P);
      const answer = await rawAnswer(await p.request(`/api/${P}/auth?key=${key}&uuid=PC`));
      expect(answer.status).toBe(200);
      expect(verifiedBy(answer.signature, answer.bytes, keys)).toEqual([added.keyId, first!.key_id]);
    }

    await b.shop.signing.retire(first!.key_id);
    await eventually(async () => (await signers(a.request)).length === 1, 5_000);
    for (const p of [a, b]) {
      expect(await signers(p.request)).toEqual([added.keyId]);
      expect((await published(p.request)).map((k) => k.key_id)).toEqual([added.keyId]);
    }
    // A retired key keeps its record, without its private half.
    const rows = await t.sql<{ key_id: string; wiped: boolean }[]>`
      select key_id, private_key is null as wiped from signing_keys order by created_at`;
    expect([...rows]).toEqual([
      { key_id: first!.key_id, wiped: true },
      { key_id: added.keyId, wiped: false },
    ]);
  });

  test("a process that missed the announcement (Redis away) follows at its next periodic reload", async () => {
    // Its own Redis namespace: it hears nothing the others announce.
    const deaf = await peer(t, testRedisPrefix(), 200);
    const before = await signers(deaf.request);
    const added = await a.shop.signing.rotate();
    await eventually(async () => (await signers(deaf.request))[0] === added.keyId, 5_000);
    expect(await signers(deaf.request)).toEqual([added.keyId, ...before]);
    await a.shop.signing.retire(before[0]!);
    await eventually(async () => (await signers(deaf.request)).length === 1, 5_000);
  });

  test("the last key cannot be retired, even by two retirements racing for the last two keys", async () => {
    const active = await published(a.request);
    expect(active).toHaveLength(1);
    await expect(a.shop.signing.retire(active[0]!.key_id)).rejects.toThrow(/последний действующий/);
    await a.shop.signing.rotate();
    const two = await published(a.request);
    const outcomes = await Promise.allSettled([
      a.shop.signing.retire(two[0]!.key_id),
      b.shop.signing.retire(two[1]!.key_id),
    ]);
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    const [left] = await t.sql<{ n: number }[]>`select count(*)::int as n from signing_keys where retired_at is null`;
    expect(left!.n).toBe(1);
    await expect(a.shop.signing.retire("0123456789abcdef")).rejects.toThrow(/не найден/);
  });
});

describe("kept in the database", () => {
  test("migrate makes one key on a fresh database, once, even when two processes migrate at once", async () => {
    const db = await testDatabase();
    await db.sql`drop schema public cascade`;
    await db.sql`create schema public`;
    const other = connectDatabase(db.url, { max: 2 });
    closers.push(() => other.end({ timeout: 2 }));
    closers.push(() => db.sql.end({ timeout: 2 }));
    await Promise.all([migrate(db.sql), migrate(other)]);
    await migrate(db.sql);
    const rows = await db.sql`select key_id from signing_keys`;
    expect(rows).toHaveLength(1);
  });

  test("a backup (pg_dump) restored elsewhere signs with the same key", async () => {
    const t = await createTestShop();
    closers.push(t.close);
    await ensureProduct(t, P);
    await t.shop.signing.rotate();
    const keys = await published(t.request);
    const dump = Bun.spawnSync(["pg_dump", "--format=custom", `--dbname=${t.databaseUrl}`], { stderr: "pipe" });
    expect(dump.exitCode).toBe(0);
    const target = await testDatabase();
    closers.push(() => target.sql.end({ timeout: 2 }));
    await target.sql`drop schema public cascade`;
    await target.sql`create schema public`;
    const restore = Bun.spawnSync(["pg_restore", "--no-owner", `--dbname=${target.url}`], {
      stdin: dump.stdout,
      stderr: "pipe",
    });
    expect(restore.stderr.toString()).toBe("");
    const restored = createShop({ sql: target.sql, cache: t.cache, config: t.config });
    const app = buildHttpApp(restored, t.config);
    const answer = await rawAnswer(
      await app.handle(new Request(`http://localhost/Morpheus%20Private/api/${P}/auth?key=NOPE&uuid=PC`)),
    );
    expect(answer.status).toBe(403);
    expect(verifiedBy(answer.signature, answer.bytes, keys)).toEqual(keys.map((k) => k.key_id));
  });
});

describe("shop processes and the CLI, as an operator runs them", () => {
  let t: TestShop;
  const procs = shopProcesses(() => ({
    DATABASE_URL: t.databaseUrl,
    REDIS_URL: t.redisUrl,
    REDIS_PREFIX: t.redisPrefix,
    SESSION_SECRET: "signing-keys-test-session-secret-0123456789",
    DATA_DIR: t.config.dataDir,
    LOG_LEVEL: "debug",
  }));
  const cliRuns: Finished[] = [];
  const cli = async (...args: string[]): Promise<Finished> => {
    const env = cleanEnv({
      DATABASE_URL: t.databaseUrl,
      REDIS_URL: t.redisUrl,
      REDIS_PREFIX: t.redisPrefix,
      DATA_DIR: t.config.dataDir,
      LOG_LEVEL: "debug",
    });
    const run = await runToEnd(["bun", "src/cli.ts", ...args], env);
    cliRuns.push(run);
    return run;
  };
  let shops: { started: Started; base: string }[] = [];
  /** Every private key this database has held, in every text form it could leak in. */
  const secrets = new Set<string>();
  const keysSeen = new Set<string>();
  const httpSeen: string[] = [];

  async function rememberSecrets(sql: Sql): Promise<void> {
    const rows = await sql<{ private_key: Buffer }[]>`
      select private_key from signing_keys where private_key is not null`;
    for (const { private_key: seed } of rows) {
      keysSeen.add(seed.toString("hex"));
      for (const form of [seed.toString("hex"), seed.toString("base64"), seed.toString("base64url")]) {
        secrets.add(form.replace(/=+$/, ""));
      }
      // PKCS#8 DER (what `openssl` and PEM files hold): a fixed prefix, then the seed.
      const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
      secrets.add(der.toString("base64").replace(/=+$/, ""));
    }
  }

  const call = async (base: string, path: string) => {
    const res = await fetch(`${base}${path}`);
    const answer = await rawAnswer(res);
    res.headers.forEach((value, name) => void httpSeen.push(`${name}: ${value}`));
    httpSeen.push(answer.text);
    return answer;
  };

  beforeAll(async () => {
    t = await createTestShop();
    closers.push(t.close);
    closers.push(() => procs.killAll());
    await ensureProduct(t, P);
    await rememberSecrets(t.sql);
    const ports = [freePort(), freePort()];
    const started = ports.map((port) => procs.start(port));
    await Promise.all(started.map((s) => s.waitFor(/http listening/, 30_000)));
    shops = started.map((s, i) => ({ started: s, base: `http://127.0.0.1:${ports[i]}/Morpheus%20Private` }));
  });

  test("api:rotate-key is obeyed by every running process at once, api:retire-key too; api:public-key names the newest", async () => {
    const first = await cli("api:public-key");
    expect(first.code).toBe(0);
    const oldId = /^key_id: ([0-9a-f]{16})$/m.exec(first.out)?.[1];
    expect(first.out).toMatch(/^key_id: [0-9a-f]{16}\npublic_key: [A-Za-z0-9+/]{43}=\n$/);
    for (const s of shops)
      expect(signerIds((await call(s.base, `/api/${P}/auth?key=K&uuid=U`)).signature)).toEqual([oldId!]);

    const rotated = await cli("api:rotate-key");
    expect(rotated.code).toBe(0);
    const newId = /^key_id: ([0-9a-f]{16})$/m.exec(rotated.out)?.[1];
    expect(newId).toBeDefined();
    expect(rotated.err).toContain(`api:retire-key ${oldId}`);
    expect(rotated.err).toContain(
      `signed by ${newId}, ${oldId} (newest first), so the loaders already shipped keep working`,
    );
    await rememberSecrets(t.sql);
    for (const s of shops) {
      await eventually(
        async () => signerIds((await call(s.base, `/api/${P}/auth?key=K&uuid=U`)).signature).length === 2,
        5_000,
      );
      const answer = await call(s.base, `/api/${P}/auth?key=K&uuid=U&nonce=${"n".repeat(20)}`);
      const keys = ((await (await fetch(`${s.base}/api/public-key`)).json()) as { keys: PublishedKey[] }).keys;
      expect(verifiedBy(answer.signature, answer.bytes, keys)).toEqual([newId!, oldId!]);
    }
    expect((await cli("api:public-key")).out).toContain(`key_id: ${newId}\n`);

    const retired = await cli("api:retire-key", oldId!);
    expect(retired).toMatchObject({ code: 0, out: `retired: ${oldId}\n` });
    // The operator reads who signs now and what that means for the loaders pinning the retired key.
    expect(retired.err).toContain(
      `note: answers are signed by ${newId} only; loaders that pin only ${oldId} no longer accept them\n`,
    );
    for (const s of shops) {
      await eventually(
        async () => signerIds((await call(s.base, `/api/${P}/auth?key=K&uuid=U`)).signature).length === 1,
        5_000,
      );
      expect(signerIds((await call(s.base, `/api/${P}/auth?key=K&uuid=U`)).signature)).toEqual([newId!]);
    }
  });

  test("the CLI refuses an unknown key id, a malformed one, and the last key, each with one clear line", async () => {
    const unknown = await cli("api:retire-key", "0123456789abcdef");
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/^error: Ключ подписи 0123456789abcdef не найден; действующие: [0-9a-f]{16}$/m);
    const malformed = await cli("api:retire-key", "nope");
    expect(malformed.code).toBe(2);
    expect(malformed.err).toContain(
      'error: key id must be 16 hex characters (as api:public-key prints it), got "nope"',
    );
    const last = /^key_id: ([0-9a-f]{16})$/m.exec((await cli("api:public-key")).out)![1]!;
    const refused = await cli("api:retire-key", last);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("последний действующий");
    expect(signerIds((await call(shops[0]!.base, `/api/${P}/auth?key=K&uuid=U`)).signature)).toEqual([last]);
  });

  test("no private key appears in anything the shop processes, the CLI or the HTTP answers print", async () => {
    await cli("help");
    await cli("migrate");
    for (const s of shops) {
      await call(s.base, "/healthz");
      await call(s.base, "/api/public-key");
    }
    // Stop the processes so every line they wrote has been read.
    for (const s of shops) s.started.proc.kill("SIGTERM");
    await Promise.all(shops.map((s) => s.started.proc.exited));
    const printed = [
      ...shops.flatMap((s) => [...s.started.stdout, ...s.started.stderr]),
      ...cliRuns.flatMap((r) => [r.out, r.err]),
      ...httpSeen,
    ].join("\n");
    // The processes did log at debug level, and about the keys: the check is not vacuous.
    expect(printed).toContain("signing keys changed");
    expect(keysSeen.size).toBe(2);
    for (const secret of secrets) expect(printed).not.toContain(secret);
  });
});
