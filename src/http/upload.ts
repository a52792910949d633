import { Readable } from "node:stream";
import type { ReadableStream as NodeWebStream } from "node:stream/web";
import busboy from "busboy";
import { MalformedBody } from "./body.ts";

/** The small text fields of an upload form (the CSRF token, …), as they came before the file. */
export type UploadFields = Record<string, string>;

export type UploadOptions<T> = {
  /** The form field that carries the file. */
  file: string;
  /**
   * Takes the file as it arrives: the fields sent before it, its chunks (leaving the loop early, or throwing,
   * stops reading the request), and the name the browser gave it.
   */
  onFile: (fields: UploadFields, chunks: AsyncIterable<Uint8Array>, filename: string) => Promise<T>;
};

/** A form's text fields are short; anything past this is not one of ours. */
const MAX_FIELD_BYTES = 8 * 1024;

/**
 * Reads a multipart/form-data request as it arrives, so a file of any size passes through with a few chunks in
 * memory instead of the whole body: the text fields before the file are collected, the file is handed to `onFile`
 * while it streams in, further files are not read. `result` is null when the form had no such file (or was not
 * multipart at all). A body that is not valid multipart is a MalformedBody; `onFile`'s refusals pass through, and
 * the rest of the body is then left unread.
 */
export function readUpload<T>(
  request: Request,
  options: UploadOptions<T>,
): Promise<{ fields: UploadFields; result: T | null }> {
  const contentType = request.headers.get("content-type") ?? "";
  const fields: UploadFields = Object.create(null);
  if (!request.body || !contentType.toLowerCase().startsWith("multipart/form-data")) {
    return Promise.resolve({ fields, result: null });
  }
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { "content-type": contentType },
      limits: { files: 1, fields: 20, parts: 25, fieldSize: MAX_FIELD_BYTES, fieldNameSize: 100 },
    });
  } catch {
    return Promise.reject(new MalformedBody("malformed multipart form"));
  }
  const source = Readable.fromWeb(request.body as unknown as NodeWebStream<Uint8Array>);

  return new Promise((resolve, reject) => {
    let receiving: Promise<T> | null = null;
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      // Stop reading the client's body: whatever it still sends is not wanted.
      source.unpipe(parser);
      source.destroy();
      reject(error);
    };
    parser.on("field", (name, value) => {
      if (!(name in fields)) fields[name] = value;
    });
    parser.on("file", (name, stream, info) => {
      if (name !== options.file || receiving) {
        stream.resume();
        return;
      }
      const before = { ...fields };
      // Through a promise, so a refusal thrown at once (a missing CSRF field) is handled like one thrown later.
      receiving = Promise.resolve().then(() => options.onFile(before, stream, info.filename ?? ""));
      receiving.catch((error) => {
        stream.resume();
        fail(error);
      });
    });
    parser.on("error", () => fail(new MalformedBody("malformed multipart form")));
    source.on("error", (error) => fail(error));
    parser.on("close", () => {
      if (settled) return;
      if (!receiving) {
        settled = true;
        resolve({ fields, result: null });
        return;
      }
      receiving.then(
        (result) => {
          if (settled) return;
          settled = true;
          resolve({ fields, result });
        },
        (error) => fail(error),
      );
    });
    source.pipe(parser);
  });
}
