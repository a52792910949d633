import { command, UsageError } from "./command.ts";

/** The CLI's commands for the licence API's signing keys: what loaders pin, and their rotation. */

export const apiPublicKey = command({
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
});

export const apiRotateKey = command({
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
        `note: answers are now signed by ${[added, ...older].map((k) => k.keyId).join(", ")} (newest first), so the ` +
          "loaders already shipped keep working. Ship loaders that pin the new key; once the old loaders are gone, " +
          "retire the old key: " +
          older.map((k) => `bun run cli api:retire-key ${k.keyId}`).join("; "),
      );
    }
    return 0;
  },
});

export const apiRetireKey = command({
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
    // What the operator must know next: who signs now, and which loaders that leaves out.
    io.err(
      `note: answers are signed by ${active.map((k) => k.keyId).join(", ")} only; ` +
        `loaders that pin only ${retired.keyId} no longer accept them`,
    );
    return 0;
  },
});
