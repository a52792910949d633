import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";

/**
 * Ed25519 key material for signed licence answers (docs/licence-api.md#signed-answers), in the forms the shop stores
 * and publishes: the raw 32-byte public key, the 32-byte private seed (which never leaves the database and this
 * process's memory), and the key id loaders use to pick the right signature.
 */
export type KeyPairBytes = { keyId: string; publicKey: Buffer; seed: Buffer };

/** The first 16 hex characters of sha256 over the raw 32-byte public key. */
export function keyIdOf(publicKey: Uint8Array): string {
  return createHash("sha256").update(publicKey).digest("hex").slice(0, 16);
}

export function newKeyPair(): KeyPairBytes {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const publicKey = Buffer.from(jwk.x!, "base64url");
  return { keyId: keyIdOf(publicKey), publicKey, seed: Buffer.from(jwk.d!, "base64url") };
}

/** A private KeyObject, made once per key: importing a key costs more than a signature. */
export function privateKeyOf(seed: Uint8Array, publicKey: Uint8Array): KeyObject {
  return createPrivateKey({
    key: {
      kty: "OKP",
      crv: "Ed25519",
      d: Buffer.from(seed).toString("base64url"),
      x: Buffer.from(publicKey).toString("base64url"),
    },
    format: "jwk",
  });
}

export function publicKeyOf(publicKey: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKey).toString("base64url") },
    format: "jwk",
  });
}

/** The public key as a PEM "PUBLIC KEY" block (SubjectPublicKeyInfo), for tools that want that form. */
export function publicKeyPem(publicKey: Uint8Array): string {
  return publicKeyOf(publicKey).export({ type: "spki", format: "pem" }).toString();
}
