import { Elysia } from "elysia";
import type { Config } from "../config.ts";
import { clientIp } from "../http/client-ip.ts";
import { log } from "../lib/log.ts";
import type { Payments } from "./payments.ts";

/** A notification is a dozen short fields; anything near this size is not AnyPay. */
const MAX_BODY_BYTES = 16 * 1024;

type Reply = { status?: number | string; headers: Record<string, string | number> };

/** A plain-text answer, through `set` so the request log records the real status. */
function text(set: Reply, status: number, body: string): string {
  set.status = status;
  set.headers["content-type"] = "text/plain; charset=utf-8";
  return body;
}

/**
 * The notification's fields, read by hand so they are exactly the strings AnyPay signed: from the query (GET) and
 * from a urlencoded or multipart form (POST), the form winning over the query. A field given twice in one place
 * becomes a list, which the check then refuses. Null when the body is not a form.
 */
async function readFields(request: Request): Promise<Record<string, unknown> | null> {
  const collect = (entries: Iterable<[string, unknown]>) => {
    const out: Record<string, unknown> = {};
    for (const [name, value] of entries) out[name] = name in out ? [out[name], value].flat() : value;
    return out;
  };
  const fields = collect(new URL(request.url).searchParams);
  if (request.method !== "POST") return fields;
  if (Number(request.headers.get("content-length") ?? 0) > MAX_BODY_BYTES) return null;
  const type = (request.headers.get("content-type") ?? "").toLowerCase();
  if (type.startsWith("multipart/form-data")) {
    const form = await request.formData().catch(() => null);
    return form ? { ...fields, ...collect(form.entries()) } : null;
  }
  const body = await request.text();
  if (body.length > MAX_BODY_BYTES) return null;
  if (type.startsWith("application/x-www-form-urlencoded")) return { ...fields, ...collect(new URLSearchParams(body)) };
  return body.trim() === "" ? fields : null;
}

/**
 * `{BASE_PATH}/payments/anypay`: AnyPay's payment notification (SPEC §7). The source address comes from the socket,
 * or from X-Forwarded-For only when the socket is our own proxy (config.trustedProxies).
 */
export function anypayNotifications(payments: Payments, config: Pick<Config, "trustedProxies">) {
  async function handle(ctx: { request: Request; server: Parameters<typeof clientIp>[1]; set: Reply }) {
    const ip = clientIp(ctx.request, ctx.server, config.trustedProxies);
    const fields = await readFields(ctx.request);
    if (fields === null) {
      log.warn("anypay notification rejected: the body is not a form", {
        ip,
        contentType: ctx.request.headers.get("content-type"),
      });
      return text(ctx.set, 400, "Rejected: malformed notification");
    }
    const answer = await payments.receiveNotification(fields, ip);
    return text(ctx.set, answer.status, answer.body);
  }

  // parse: "none" — the body is read in readFields, exactly as sent.
  return new Elysia({ name: "anypay-notifications" })
    .get("/payments/anypay", (ctx) => handle(ctx))
    .post("/payments/anypay", (ctx) => handle(ctx), { parse: "none" });
}
