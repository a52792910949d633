import * as v from "valibot";

/** How the panel answers: HTML, redirects that htmx and plain browsers both follow, form values read safely. */

export const HTML_TYPE = "text/html; charset=utf-8";

export function html(body: string, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": HTML_TYPE, "cache-control": "no-store", ...headers },
  });
}

/** Renders a template (Kita components are sync strings unless a child is async) into an HTML response. */
export async function render(
  element: string | Promise<string>,
  status = 200,
  headers: Record<string, string> = {},
): Promise<Response> {
  return html(await element, status, headers);
}

/** A request made by htmx (any kind: boosted navigation, a form, a list refresh). */
export function isHtmx(request: Request): boolean {
  return request.headers.get("hx-request") === "true";
}

/**
 * An htmx request that swaps one part of the page (a list, a form): answer with that fragment only. Everything
 * else — a first visit, a reload, a boosted link that swaps the whole body — gets the full page around the same
 * fragment.
 */
export function isPartial(request: Request): boolean {
  return isHtmx(request) && request.headers.get("hx-request-type") === "partial";
}

/**
 * Sends the browser to `to`: htmx gets HX-Location (fetch and swap without a reload) or, with `full`, HX-Redirect
 * (a real page load: after login/logout, when <body> itself must change); a plain browser gets 303 See Other.
 */
export function redirect(request: Request, to: string, options: { full?: boolean } = {}): Response {
  if (isHtmx(request)) {
    return new Response(null, {
      status: 200,
      headers: { [options.full ? "hx-redirect" : "hx-location"]: to, "cache-control": "no-store" },
    });
  }
  return new Response(null, { status: 303, headers: { location: to, "cache-control": "no-store" } });
}

// ---- form values ----------------------------------------------------------------------------------------------

type Body = Record<string, unknown>;

function asBody(body: unknown): Body {
  return body && typeof body === "object" && !Array.isArray(body) ? (body as Body) : {};
}

/** A text field of a form (urlencoded or multipart); "" when absent or not text. */
export function field(body: unknown, name: string): string {
  const value = asBody(body)[name];
  if (typeof value === "string") return value;
  if (Array.isArray(value) && typeof value[0] === "string") return value[0];
  return "";
}

/** Every value of a repeated text field (checkboxes of one name); [] when absent. */
export function fields(body: unknown, name: string): string[] {
  const value = asBody(body)[name];
  const all = Array.isArray(value) ? value : [value];
  return all.filter((v): v is string => typeof v === "string");
}

/** An uploaded file; null when absent or empty. */
export function file(body: unknown, name: string): File | null {
  const value = asBody(body)[name];
  const one = Array.isArray(value) ? value[0] : value;
  return one instanceof File && one.size > 0 ? one : null;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; errors: Record<string, string> };

/** Validates form input with a valibot schema; the first message per field, keyed by the field's name. */
export function check<S extends v.GenericSchema>(schema: S, input: unknown): Checked<v.InferOutput<S>> {
  const result = v.safeParse(schema, input);
  if (result.success) return { ok: true, value: result.output };
  const errors: Record<string, string> = {};
  for (const issue of result.issues) {
    const key = issue.path?.map((p) => String(p.key)).join(".") || "_";
    errors[key] ??= issue.message;
  }
  return { ok: false, errors };
}

/** A whole number typed into a form, within bounds (valibot does not coerce). */
export const wholeNumber = (min: number, max: number, message: string) =>
  v.pipe(
    v.string(),
    v.trim(),
    v.regex(/^\d{1,12}$/, message),
    v.transform(Number),
    v.number(),
    v.minValue(min, message),
    v.maxValue(max, message),
  );

/** A route's numeric id; null for anything else ("abc", "1e3", huge). */
export function idParam(text: string | undefined): number | null {
  if (!text || !/^\d{1,15}$/.test(text)) return null;
  const n = Number(text);
  return n > 0 ? n : null;
}

/** A query string value as text, or undefined (arrays from repeated keys take the first). */
export function queryText(query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name];
  if (typeof value === "string") return value;
  if (Array.isArray(value) && typeof value[0] === "string") return value[0];
  return undefined;
}
