/**
 * A request body read with a byte budget. Bun refuses a body whose Content-Length is over the server's limit (50 MB
 * for build uploads), but a chunked body has no Content-Length: without counting as it arrives, a small endpoint
 * would buffer whatever a client streams at it.
 */

/** The body's bytes, or null once it is over `maxBytes` (the rest is not read). */
export async function readBodyWithin(request: Request, maxBytes: number): Promise<Uint8Array<ArrayBuffer> | null> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) return null;
  if (!request.body) return new Uint8Array(0);
  // With a length the server reads exactly that many bytes: one read, without a stream reader's per-chunk promises
  // (the auth API's hot path pays for those on every call).
  if (declared !== null) return new Uint8Array(await request.arrayBuffer());
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}

/** Form fields in order; a name given twice becomes a list, for the caller to refuse rather than guess. */
export function collectFields(entries: Iterable<[string, unknown]>): Record<string, unknown> {
  // No prototype: a field named "toString" or "__proto__" is a field like any other, not a built-in.
  const out: Record<string, unknown> = Object.create(null);
  for (const [name, value] of entries) out[name] = Object.hasOwn(out, name) ? [out[name], value].flat() : value;
  return out;
}

/** Thrown by parseBody for a body that does not parse as its content type says. */
export class MalformedBody extends Error {}

/**
 * A body already read (readBodyWithin) parsed as its content type says: JSON, a urlencoded or multipart form, or
 * nothing (undefined) for an empty body or another type.
 */
export async function parseBody(bytes: Uint8Array<ArrayBuffer>, contentType: string | null): Promise<unknown> {
  const type = (contentType ?? "").toLowerCase();
  if (type.startsWith("multipart/form-data")) {
    const form = await new Response(bytes, { headers: { "content-type": contentType! } }).formData().catch(() => {
      throw new MalformedBody("malformed multipart form");
    });
    return collectFields(form.entries());
  }
  const text = new TextDecoder().decode(bytes);
  if (type.startsWith("application/x-www-form-urlencoded")) return collectFields(new URLSearchParams(text));
  if (type.startsWith("application/json")) {
    try {
      return JSON.parse(text);
    } catch {
      throw new MalformedBody("malformed JSON");
    }
  }
  return undefined;
}
