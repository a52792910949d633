import { createPublicKey, type KeyObject, verify } from "node:crypto";

/** A key as GET /api/public-key publishes it. */
export type PublishedKey = { key_id: string; public_key: string; pem: string; created_at: string };

/** A verifying key from the base64 of the raw 32 bytes, as a loader would pin it. */
export function keyObject(publicKeyBase64: string): KeyObject {
  return createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKeyBase64, "base64").toString("base64url") },
    format: "jwk",
  });
}

/** The key ids an X-Signature header names, in its order (newest first). */
export function signerIds(header: string | null): string[] {
  return header === null ? [] : header.split(",").map((entry) => entry.trim().split(":")[0]!);
}

/** The key ids whose signature in the header verifies over `body` with the given keys, in header order. */
export function verifiedBy(header: string | null, body: Uint8Array, keys: PublishedKey[]): string[] {
  if (header === null) return [];
  const byId = new Map(keys.map((k) => [k.key_id, keyObject(k.public_key)]));
  return header.split(",").flatMap((entry) => {
    const [id = "", signature = ""] = entry.trim().split(":");
    const key = byId.get(id);
    return key && verify(null, body, key, Buffer.from(signature, "base64")) ? [id] : [];
  });
}

/** An answer with its exact bytes kept, for checking signatures. */
export type RawAnswer = { status: number; text: string; bytes: Uint8Array; signature: string | null; headers: Headers };

export async function rawAnswer(res: Response): Promise<RawAnswer> {
  const bytes = new Uint8Array(await res.arrayBuffer());
  return {
    status: res.status,
    text: new TextDecoder().decode(bytes),
    bytes,
    signature: res.headers.get("x-signature"),
    headers: res.headers,
  };
}
