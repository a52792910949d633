import type { TestShop } from "./shop.ts";

export type AuthAnswer = { status: number; body: Record<string, unknown> };

/** A product by name, created on first use. */
export async function ensureProduct(t: TestShop, name: string) {
  return (await t.shop.products.byName(name)) ?? (await t.shop.products.create({ name }));
}

/** A key sold (as a gift) and never activated. */
export async function soldKey(t: TestShop, product: string, days = 1): Promise<string> {
  const p = await ensureProduct(t, product);
  const [key] = await t.shop.keys.generate(p.id, days, 1);
  // Issue takes the oldest available key: make sure it is ours by taking it by id.
  const sold = await t.shop.keys.issue(p.id, days);
  if (sold.key !== key) {
    await t.sql`update keys set state = 'available', gift = false, sold_at = null where key = ${sold.key}`;
    await t.sql`update keys set state = 'sold', gift = true, sold_at = now() where key = ${key!}`;
  }
  return key!;
}

/** POSTs JSON to the product's auth API through app.handle (the same code path as a served port). */
export async function auth(
  t: TestShop,
  product: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<AuthAnswer> {
  const res = await t.request(`/api/${encodeURIComponent(product)}/auth`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export const KEY_MISMATCH = { status: 403, body: { success: false, message: "Key mismatch" } };
export const HWID_MISMATCH = { status: 403, body: { success: false, message: "HWID mismatch" } };
export const KEY_EXPIRED = { status: 403, body: { success: false, message: "Key expired" } };
export const KEY_BANNED = { status: 403, body: { success: false, message: "Key banned" } };
export const PRODUCT_NOT_FOUND = { status: 404, body: { success: false, message: "Product not found" } };

/** Polls until check() holds or the deadline passes; returns how long it took. */
export async function eventually(check: () => Promise<boolean>, deadlineMs = 2_000): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > deadlineMs) throw new Error(`condition not met within ${deadlineMs} ms`);
    await Bun.sleep(5);
  }
}
