import { Elysia } from "elysia";
import type { Config } from "../config.ts";
import { collectFields, parseBody, readBodyWithin } from "../http/body.ts";
import { clientIp } from "../http/client-ip.ts";
import { log } from "../lib/log.ts";
import type { Anypay } from "../payments/anypay/provider.ts";

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
 * becomes a list, which the check then refuses. Null when the body is not a form or is too big for one.
 */
async function readFields(request: Request): Promise<Record<string, unknown> | null> {
  const fields = collectFields(new URL(request.url).searchParams);
  if (request.method !== "POST") return fields;
  const bytes = await readBodyWithin(request, MAX_BODY_BYTES);
  if (bytes === null) return null;
  const contentType = request.headers.get("content-type");
  const type = (contentType ?? "").toLowerCase();
  if (type.startsWith("multipart/form-data") || type.startsWith("application/x-www-form-urlencoded")) {
    const form = await parseBody(bytes, contentType).catch(() => null);
    return form ? { ...fields, ...(form as Record<string, unknown>) } : null;
  }
  return new TextDecoder().decode(bytes).trim() === "" ? fields : null;
}

/**
 * `{BASE_PATH}/payments/anypay`: AnyPay's payment notification (docs/operator.md#anypay), handed to the AnyPay
 * provider as it came. The source address comes from the socket, or from X-Forwarded-For only when the socket is our
 * own proxy (config.trustedProxies).
 */
export function anypayNotifications(anypay: Anypay, config: Pick<Config, "trustedProxies">) {
  async function handle(ctx: { request: Request; server: Parameters<typeof clientIp>[1]; set: Reply }) {
    const ip = clientIp(ctx.request, ctx.server, config.trustedProxies);
    // Checked before the body is read: a stranger gets nothing buffered or parsed, only the refusal.
    const refused = anypay.refuseSource(ip);
    if (refused) return text(ctx.set, refused.status, refused.body);
    const fields = await readFields(ctx.request);
    if (fields === null) {
      log.warn("anypay notification: the body is not a form", {
        ip,
        contentType: ctx.request.headers.get("content-type"),
      });
    }
    const answer = await anypay.receive({ fields, ip });
    return text(ctx.set, answer.status, answer.body);
  }

  // parse: "none" — the body is read in readFields, exactly as sent.
  return new Elysia({ name: "anypay-notifications" })
    .get("/payments/anypay", (ctx) => handle(ctx))
    .post("/payments/anypay", (ctx) => handle(ctx), { parse: "none" });
}
