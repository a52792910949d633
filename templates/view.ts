/**
 * What every panel template knows about the request it renders for. Built by src/admin; templates never reach
 * for anything else, so they stay pure functions of their props.
 */
export type View = {
  /** BASE_PATH as it appears in URLs (percent-encoded: "/Morpheus%20Private"). */
  base: string;
  /** The CSRF token for this session; empty on the login page. */
  csrf: string;
  /** The logged-in panel account; empty on the login page. */
  login: string;
  /** Cache-busting URLs of the static files, by file name. */
  assets: Record<string, string>;
  /** The public origin + base path, for URLs shown to be copied (the auth API). */
  publicBase: string;
  /** Orders that need the owner (the badge on the Заказы tab); read only for requests that render a whole page. */
  needsOwner?: number;
};

/** A panel URL: `href(view, "/products/1")` → "/Morpheus%20Private/products/1". */
export function href(view: View, path: string, query?: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== "") search.set(k, String(v));
  }
  const qs = search.toString();
  return `${view.base}${path}${qs ? `?${qs}` : ""}`;
}

/** Field name → message, shown next to the field. */
export type FieldErrors = Partial<Record<string, string>>;
