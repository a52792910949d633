import { invalidateCatalogue } from "../../cache/catalogue.ts";
import { DURATIONS, type DurationDays, isDuration } from "../../lib/durations.ts";
import { longerThan, plainText } from "../../lib/text.ts";
import type { ShopDeps } from "../deps.ts";
import { conflict, invalid, notFound, pgCode } from "../errors.ts";

export type Product = {
  id: number;
  name: string;
  description: string;
  archivedAt: Date | null;
  build: { path: string; name: string; size: number; sha256: string; uploadedAt: Date; fileId: string | null } | null;
  createdAt: Date;
};

export type PriceList = Partial<Record<DurationDays, number>>;

export const MAX_PRODUCT_NAME = 64;
/** The most Stars one duration may cost (the column's check, sql/0014_checkout.sql). */
export const MAX_STARS_PRICE = 100_000;
export const MAX_DESCRIPTION = 3000;

/** Why a product name cannot be used, or null. The name is also a URL path segment of the auth API. */
export function productNameProblem(name: string): string | null {
  if (name.length === 0) return "Название не может быть пустым";
  if (longerThan(name, MAX_PRODUCT_NAME)) return `Название длиннее ${MAX_PRODUCT_NAME} символов`;
  if (name.includes("/")) return "Название не может содержать «/» (оно входит в адрес API)";
  if (name !== name.trim()) return "Название не может начинаться или заканчиваться пробелом";
  // URL normalisation turns /api/../auth into another path: the loader could never reach such a product.
  if (name === "." || name === "..") return "Название не может быть «.» или «..» (оно входит в адрес API)";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(name)) return "Название содержит управляющие символы";
  return null;
}

type ProductRow = {
  id: string;
  name: string;
  description: string;
  archived_at: Date | null;
  build_path: string | null;
  build_name: string | null;
  build_size: string | null;
  build_sha256: string | null;
  build_uploaded_at: Date | null;
  build_file_id: string | null;
  created_at: Date;
};

function toProduct(row: ProductRow): Product {
  return {
    id: Number(row.id),
    name: row.name,
    description: row.description,
    archivedAt: row.archived_at,
    build:
      row.build_path && row.build_name && row.build_size && row.build_sha256 && row.build_uploaded_at
        ? {
            path: row.build_path,
            name: row.build_name,
            size: Number(row.build_size),
            sha256: row.build_sha256,
            uploadedAt: row.build_uploaded_at,
            fileId: row.build_file_id,
          }
        : null,
    createdAt: row.created_at,
  };
}

export function createProducts(deps: ShopDeps) {
  const { sql } = deps;

  async function create(input: { name: string; description?: string }): Promise<Product> {
    const name = input.name;
    const problem = productNameProblem(name);
    if (problem) throw invalid(problem, "name");
    const description = plainText(input.description ?? "");
    if (description.length > MAX_DESCRIPTION)
      throw invalid(`Описание длиннее ${MAX_DESCRIPTION} символов`, "description");
    try {
      const [row] = await sql<ProductRow[]>`
        insert into products (name, description) values (${name}, ${description}) returning *`;
      await invalidateCatalogue(deps);
      return toProduct(row!);
    } catch (error) {
      if (pgCode(error) === "23505") throw conflict(`Продукт «${name}» уже существует`, "name");
      throw error;
    }
  }

  async function byName(name: string): Promise<Product | null> {
    const [row] = await sql<ProductRow[]>`select * from products where name = ${name}`;
    return row ? toProduct(row) : null;
  }

  async function byId(id: number): Promise<Product | null> {
    const [row] = await sql<ProductRow[]>`select * from products where id = ${id}`;
    return row ? toProduct(row) : null;
  }

  async function require(name: string): Promise<Product> {
    const product = await byName(name);
    if (!product) throw notFound(`Продукт «${name}» не найден`, "product");
    return product;
  }

  async function list(options: { includeArchived?: boolean } = {}): Promise<Product[]> {
    const rows = options.includeArchived
      ? await sql<ProductRow[]>`select * from products order by archived_at nulls first, name`
      : await sql<ProductRow[]>`select * from products where archived_at is null order by name`;
    return rows.map(toProduct);
  }

  async function updateDescription(id: number, description: string): Promise<void> {
    const text = plainText(description);
    if (text.length > MAX_DESCRIPTION) throw invalid(`Описание длиннее ${MAX_DESCRIPTION} символов`, "description");
    const rows = await sql`update products set description = ${text}, updated_at = now() where id = ${id} returning id`;
    if (rows.length === 0) throw notFound("Продукт не найден");
    await invalidateCatalogue(deps);
  }

  async function setArchived(id: number, archived: boolean): Promise<void> {
    const rows = await sql`
      update products set archived_at = ${archived ? sql`now()` : null}, updated_at = now()
      where id = ${id} returning id`;
    if (rows.length === 0) throw notFound("Продукт не найден");
    await invalidateCatalogue(deps);
  }

  async function prices(productId: number): Promise<PriceList> {
    const rows = await sql<{ days: number; rub: number }[]>`
      select days, rub from prices where product_id = ${productId} and rub > 0 order by days`;
    const out: PriceList = {};
    for (const r of rows) if (isDuration(r.days)) out[r.days] = r.rub;
    return out;
  }

  /** A duration's price in Telegram Stars, kept while it is off sale (docs/panel.md#telegram-stars). */
  async function starsPrices(productId: number): Promise<PriceList> {
    const rows = await sql<{ days: number; stars: number }[]>`
      select days, stars from prices where product_id = ${productId} and stars is not null order by days`;
    const out: PriceList = {};
    for (const r of rows) if (isDuration(r.days)) out[r.days] = r.stars;
    return out;
  }

  async function requireProductId(productId: number): Promise<void> {
    const exists = await sql`select 1 from products where id = ${productId}`;
    if (exists.length === 0) throw notFound("Продукт не найден");
  }

  /**
   * Sets the price of a duration in whole roubles; 0 or null takes the duration off sale. A duration with a Stars
   * price keeps its row at 0 roubles, so the Stars price is there again when the duration goes back on sale.
   */
  async function setPrice(productId: number, days: number, rub: number | null): Promise<void> {
    if (!isDuration(days)) throw invalid(`Длительность должна быть одной из: ${DURATIONS.join(", ")}`, "days");
    if (rub !== null && (!Number.isInteger(rub) || rub < 0 || rub > 10_000_000)) {
      throw invalid("Цена — целое число рублей от 0 до 10 000 000", "rub");
    }
    await requireProductId(productId);
    if (rub === null || rub === 0) {
      await sql`delete from prices where product_id = ${productId} and days = ${days} and stars is null`;
      await sql`update prices set rub = 0, updated_at = now() where product_id = ${productId} and days = ${days}`;
    } else {
      await sql`
        insert into prices (product_id, days, rub) values (${productId}, ${days}, ${rub})
        on conflict (product_id, days) do update set rub = excluded.rub, updated_at = now()`;
    }
    await invalidateCatalogue(deps);
  }

  /**
   * Sets the price of a duration in whole Telegram Stars; 0 or null removes it (the duration is then paid in roubles
   * only). The rouble price alone decides whether the duration is on sale: a Stars price without one waits for it.
   */
  async function setStarsPrice(productId: number, days: number, stars: number | null): Promise<void> {
    if (!isDuration(days)) throw invalid(`Длительность должна быть одной из: ${DURATIONS.join(", ")}`, "days");
    if (stars !== null && (!Number.isInteger(stars) || stars < 0 || stars > MAX_STARS_PRICE)) {
      throw invalid(`Цена в звёздах — целое число от 0 до ${MAX_STARS_PRICE}`, "stars");
    }
    await requireProductId(productId);
    if (stars === null || stars === 0) {
      await sql`update prices set stars = null, updated_at = now() where product_id = ${productId} and days = ${days}`;
      // A row that only held the Stars price (off sale in roubles) has nothing left to say.
      await sql`delete from prices where product_id = ${productId} and days = ${days} and rub = 0 and stars is null`;
    } else {
      await sql`
        insert into prices (product_id, days, rub, stars) values (${productId}, ${days}, 0, ${stars})
        on conflict (product_id, days) do update set stars = excluded.stars, updated_at = now()`;
    }
    await invalidateCatalogue(deps);
  }

  /** Records a new build whose file is already in place; the previous file is the caller's to remove. */
  async function setBuild(
    productId: number,
    build: { path: string; name: string; size: number; sha256: string },
  ): Promise<{ previousPath: string | null }> {
    return await sql.begin(async (tx) => {
      const [old] = await tx<{ build_path: string | null }[]>`
        select build_path from products where id = ${productId} for update`;
      if (!old) throw notFound("Продукт не найден");
      await tx`
        update products set build_path = ${build.path}, build_name = ${build.name}, build_size = ${build.size},
          build_sha256 = ${build.sha256}, build_uploaded_at = now(), build_file_id = null, updated_at = now()
        where id = ${productId}`;
      return { previousPath: old.build_path };
    });
  }

  /** Remembers Telegram's file_id for the current build, unless the build was replaced meanwhile. */
  async function rememberBuildFileId(productId: number, sha256: string, fileId: string): Promise<void> {
    await sql`
      update products set build_file_id = ${fileId}
      where id = ${productId} and build_sha256 = ${sha256}`;
  }

  return {
    create,
    byName,
    byId,
    require,
    list,
    updateDescription,
    setArchived,
    prices,
    setPrice,
    starsPrices,
    setStarsPrice,
    setBuild,
    rememberBuildFileId,
  };
}

export type Products = ReturnType<typeof createProducts>;
