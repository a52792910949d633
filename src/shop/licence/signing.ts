import { type KeyObject, sign } from "node:crypto";
import { CHANNELS } from "../../cache/channels.ts";
import { log } from "../../lib/log.ts";
import { keyIdOf, newKeyPair, privateKeyOf, publicKeyPem } from "../../lib/signing.ts";
import type { ShopDeps } from "../deps.ts";
import { asUnavailable, conflict, notFound } from "../errors.ts";

/**
 * The keys that sign licence answers (docs/licence-api.md#signed-answers). Every process holds the active keys in
 * memory as KeyObjects and signs with each of them, newest first; the database is asked only when a key was added or
 * retired. Such a change is announced through the cache, so every process follows within moments, and each process also
 * checks the key list whenever it re-reads its settings (followChanges), so a change announced while Redis is away
 * still arrives.
 *
 * The private halves never leave this module: not in a return value, a log line or an error.
 */
export type SigningKeyInfo = {
  keyId: string;
  /** The raw 32-byte public key, base64. */
  publicKey: string;
  pem: string;
  createdAt: Date;
  retiredAt: Date | null;
};

/** Bodies whose signatures are kept at most; when full the map starts afresh (a flood only churns it). */
const MAX_REPEATS = 1_000;

type ActiveKey = { info: SigningKeyInfo; privateKey: KeyObject; prefix: string };

type KeyRow = {
  key_id: string;
  public_key: Buffer;
  private_key: Buffer | null;
  created_at: Date;
  retired_at: Date | null;
};

function infoOf(row: Pick<KeyRow, "key_id" | "public_key" | "created_at" | "retired_at">): SigningKeyInfo {
  return {
    keyId: row.key_id,
    publicKey: row.public_key.toString("base64"),
    pem: publicKeyPem(row.public_key),
    createdAt: row.created_at,
    retiredAt: row.retired_at,
  };
}

export function createSigning(deps: ShopDeps) {
  const { sql, cache } = deps;
  let active: ActiveKey[] = [];
  /** The ids of `active`, newest first, joined: what `refresh` compares with the database's list. */
  let activeIds: string | null = null;
  let loading: Promise<void> | null = null;
  let again: Promise<void> | null = null;
  let warnedNone = false;
  /**
   * X-Signature values of recent answers without a nonce, by body. Such bodies repeat — every refusal of one kind
   * is the same bytes, and a PC asking again within the hour gets the same answer — and Ed25519 signatures are
   * deterministic, so a repeat costs a lookup instead of a signature per key (~30 µs each). A flood of guessed keys
   * then costs no signing at all. Emptied whenever the keys change.
   */
  const repeats = new Map<string, string>();

  /** Reads the active keys, private halves included, and makes their KeyObjects. */
  async function readKeys(): Promise<void> {
    const rows = await sql<KeyRow[]>`
      select key_id, public_key, private_key, created_at, retired_at from signing_keys
      where retired_at is null order by created_at desc, key_id desc`;
    const keys: ActiveKey[] = [];
    for (const row of rows) {
      if (row.private_key === null) continue;
      // A row that does not hold together (edited by hand) would sign answers no loader can check.
      if (keyIdOf(row.public_key) !== row.key_id) {
        log.error("signing key skipped: its id does not match its public key", { keyId: row.key_id });
        continue;
      }
      const privateKey = privateKeyOf(row.private_key, row.public_key);
      row.private_key.fill(0);
      keys.push({ info: infoOf(row), privateKey, prefix: `${row.key_id}:` });
    }
    if (keys.length === 0 && !warnedNone) {
      warnedNone = true;
      log.error("no signing key: licence answers go out unsigned until `bun run cli migrate` creates one");
    }
    const before = activeIds;
    active = keys;
    repeats.clear();
    activeIds = keys.map((k) => k.info.keyId).join(",");
    if (before !== null && before !== activeIds) log.info("signing keys changed", { keyIds: activeIds });
  }

  /**
   * One read at a time; a load asked for while one runs reads again after it, since that one may have started
   * before the change it is asked to pick up.
   */
  function load(): Promise<void> {
    if (loading) {
      again ??= loading
        .catch(() => {})
        .then(() => {
          again = null;
          return load();
        });
      return again;
    }
    loading = readKeys().finally(() => {
      loading = null;
    });
    return loading;
  }

  /** Re-reads the keys if the database's list of active key ids differs from ours (one small read otherwise). */
  async function refresh(): Promise<void> {
    const rows = await sql<{ key_id: string }[]>`
      select key_id from signing_keys where retired_at is null order by created_at desc, key_id desc`;
    if (rows.map((r) => r.key_id).join(",") !== activeIds) await load();
  }

  /**
   * Null once the keys are in memory (the hot path then never waits); else the first load, which fails with
   * ShopUnavailable while the database cannot be reached.
   */
  function ready(): Promise<void> | null {
    if (activeIds !== null) return null;
    return load().catch((error: unknown) => {
      throw asUnavailable(error);
    });
  }

  /**
   * The X-Signature value for these exact bytes: `<key id>:<base64 signature>` per active key, newest first,
   * comma-separated. Null when no key is loaded.
   */
  function signatureHeader(body: Uint8Array): string | null {
    if (active.length === 0) return null;
    let header = "";
    for (const key of active) {
      if (header !== "") header += ",";
      header += key.prefix + sign(null, body, key.privateKey).toString("base64");
    }
    return header;
  }

  /** signatureHeader for a body that may well be sent again (an answer without a nonce); `text` is its text. */
  function repeatableSignatureHeader(text: string, body: Uint8Array): string | null {
    const known = repeats.get(text);
    if (known !== undefined) return known;
    const header = signatureHeader(body);
    if (header === null) return null;
    if (repeats.size >= MAX_REPEATS) repeats.clear();
    repeats.set(text, header);
    return header;
  }

  /** The keys that sign now, newest first (what loaders may pin): from memory, for the public endpoint. */
  function activeKeys(): SigningKeyInfo[] {
    return active.map((k) => k.info);
  }

  /** Every key ever made, newest first, retired ones included: for the operator. */
  async function list(): Promise<SigningKeyInfo[]> {
    const rows = await sql<KeyRow[]>`
      select key_id, public_key, created_at, retired_at from signing_keys order by created_at desc, key_id desc`;
    return rows.map(infoOf);
  }

  async function announce(): Promise<void> {
    await cache.publish(CHANNELS.signingKeys, "");
  }

  /** Adds a key that signs from now on, beside the ones already active. */
  async function rotate(): Promise<SigningKeyInfo> {
    const pair = newKeyPair();
    const [row] = await sql.begin(async (tx) => {
      // Rotations and retirements one at a time, so "never zero keys" holds whatever runs at once.
      await tx`lock table signing_keys in share row exclusive mode`;
      return await tx<KeyRow[]>`
        insert into signing_keys (key_id, public_key, private_key)
        values (${pair.keyId}, ${pair.publicKey}, ${pair.seed})
        returning key_id, public_key, created_at, retired_at`;
    });
    pair.seed.fill(0);
    log.info("signing key added", { keyId: pair.keyId });
    await announce();
    // A process that signs follows at once; one that never signed (the CLI) has no reason to read private keys.
    if (activeIds !== null) await load();
    return infoOf(row!);
  }

  /**
   * Stops signing with a key and wipes its private half (a retired key never signs again). Refused for an unknown
   * id and for the last active key: the licence API always signs.
   */
  async function retire(keyId: string): Promise<{ retired: SigningKeyInfo; wasRetired: boolean }> {
    const outcome = await sql.begin(async (tx) => {
      await tx`lock table signing_keys in share row exclusive mode`;
      const [row] = await tx<KeyRow[]>`
        select key_id, public_key, created_at, retired_at from signing_keys where key_id = ${keyId}`;
      if (!row) {
        const ids = await tx<{ key_id: string }[]>`
          select key_id from signing_keys where retired_at is null order by created_at desc, key_id desc`;
        throw notFound(`Ключ подписи ${keyId} не найден; действующие: ${ids.map((r) => r.key_id).join(", ")}`);
      }
      if (row.retired_at !== null) return { retired: infoOf(row), wasRetired: true };
      const [others] = await tx<{ n: number }[]>`
        select count(*)::int as n from signing_keys where retired_at is null and key_id <> ${keyId}`;
      if (others!.n === 0) {
        throw conflict(
          `Ключ подписи ${keyId} — последний действующий: без него ответы API остались бы без подписи. ` +
            "Сначала добавьте новый (api:rotate-key)",
        );
      }
      const [retired] = await tx<KeyRow[]>`
        update signing_keys set retired_at = now(), private_key = null where key_id = ${keyId}
        returning key_id, public_key, created_at, retired_at`;
      return { retired: infoOf(retired!), wasRetired: false };
    });
    if (!outcome.wasRetired) {
      log.info("signing key retired", { keyId });
      await announce();
      if (activeIds !== null) await load();
    }
    return outcome;
  }

  return { ready, refresh, signatureHeader, repeatableSignatureHeader, activeKeys, list, rotate, retire };
}

export type Signing = ReturnType<typeof createSigning>;
