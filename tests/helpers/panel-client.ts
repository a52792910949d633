import type { TestShop } from "./shop.ts";

/**
 * A browser-like client for the panel over `app.handle`: keeps cookies per path-free jar, reads the CSRF token the
 * pages render, and sends forms the way a plain browser or htmx would.
 */
export class PanelClient {
  readonly cookies = new Map<string, string>();
  csrf = "";

  constructor(
    readonly t: Pick<TestShop, "request" | "config">,
    readonly headers: Record<string, string> = {},
  ) {}

  get base(): string {
    return encodeURI(this.t.config.basePath);
  }

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  /** Remembers Set-Cookie (a Max-Age=0 cookie is forgotten), and the CSRF token if the page has one. */
  private async keep(res: Response): Promise<Response> {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (/max-age=0/i.test(line) || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  async get(path: string, options: { htmx?: "partial" | "full"; target?: string } = {}): Promise<Response> {
    const headers: Record<string, string> = { ...this.headers, cookie: this.cookieHeader() };
    if (options.htmx) {
      headers["hx-request"] = "true";
      headers["hx-request-type"] = options.htmx;
      if (options.target) headers["hx-target"] = options.target;
    }
    return this.keep(await this.t.request(path, { headers }));
  }

  /** GET and read the page; takes the CSRF token it carries. */
  async page(path: string): Promise<{ status: number; html: string; res: Response }> {
    const res = await this.get(path);
    const html = await res.text();
    const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
    if (token) this.csrf = token;
    return { status: res.status, html, res };
  }

  async post(
    path: string,
    fields: Record<string, string | Blob> = {},
    options: { csrf?: boolean | string; htmx?: boolean; multipart?: boolean; target?: string } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...this.headers, cookie: this.cookieHeader() };
    const token = typeof options.csrf === "string" ? options.csrf : options.csrf === false ? "" : this.csrf;
    let body: BodyInit;
    if (options.multipart || Object.values(fields).some((v) => v instanceof Blob)) {
      const form = new FormData();
      // First, as the panel's forms have it (a browser sends fields in the order of the page).
      if (token && !options.htmx) form.append("_csrf", token);
      for (const [k, v] of Object.entries(fields)) form.append(k, v);
      body = form;
    } else {
      const form = new URLSearchParams();
      for (const [k, v] of Object.entries(fields)) form.append(k, v as string);
      if (token && !options.htmx) form.append("_csrf", token);
      body = form;
      headers["content-type"] = "application/x-www-form-urlencoded";
    }
    if (options.htmx) {
      headers["hx-request"] = "true";
      headers["hx-request-type"] = "partial";
      if (token) headers["x-csrf-token"] = token;
      if (options.target) headers["hx-target"] = options.target;
    }
    return this.keep(await this.t.request(path, { method: "POST", body, headers }));
  }

  /** Opens the login page and logs in; returns the login answer. */
  async login(login: string, password: string): Promise<Response> {
    await this.page("/");
    return this.post("/login", { login, password });
  }
}
