import { MAX_STARS_PRICE } from "../shop/products/products.ts";
import { command, days, productName, wholeNumber } from "./command.ts";

/** The CLI's commands for the catalogue: products, their prices, their builds. */

export const productAdd = command({
  name: "product:add",
  usage: "product:add <name> [--description <text>]",
  summary: "create a product (the name is also its auth API address)",
  positionals: { min: 1, max: 1 },
  options: ["description"],
  parse: ({ positionals: [name], options }) => ({
    name: productName(name!),
    description: options.get("description") ?? "",
  }),
  run: async ({ shop, config, io }, input) => {
    const product = await shop.products.create(input);
    io.out(`product added: ${product.name}`);
    io.out(`auth API: ${config.publicUrl}${encodeURI(config.basePath)}/api/${encodeURIComponent(product.name)}/auth`);
    return 0;
  },
});

export const priceSet = command({
  name: "price:set",
  usage: "price:set <product> <days> <rub>",
  summary: "set the price of a duration in whole roubles; 0 or none takes it off sale",
  positionals: { min: 3, max: 3 },
  parse: ({ positionals: [product, d, rub] }) => ({
    product: product!,
    days: days(d!),
    rub: rub === "none" ? 0 : wholeNumber(rub!, "rub", 0, 10_000_000),
  }),
  run: async ({ shop, io }, input) => {
    const product = await shop.products.require(input.product);
    await shop.products.setPrice(product.id, input.days, input.rub);
    io.out(`${product.name}, ${input.days} days: ${input.rub === 0 ? "off sale" : `${input.rub} RUB`}`);
    return 0;
  },
});

export const starsSet = command({
  name: "stars:set",
  usage: "stars:set <product> <days> <stars>",
  summary: "set the price of a duration in Telegram Stars; 0 removes it (the duration is then paid in roubles only)",
  positionals: { min: 3, max: 3 },
  parse: ({ positionals: [product, d, stars] }) => ({
    product: product!,
    days: days(d!),
    stars: wholeNumber(stars!, "stars", 0, MAX_STARS_PRICE),
  }),
  run: async ({ shop, io }, input) => {
    const product = await shop.products.require(input.product);
    await shop.products.setStarsPrice(product.id, input.days, input.stars);
    const rub = (await shop.products.prices(product.id))[input.days];
    // A Stars price alone sells nothing: the rouble price decides whether the duration is on sale.
    const note = input.stars > 0 && rub === undefined ? " (off sale until it has a price in roubles: price:set)" : "";
    io.out(
      `${product.name}, ${input.days} days: ${input.stars === 0 ? "no Stars price" : `${input.stars} Stars`}${note}`,
    );
    return 0;
  },
});

export const buildUpload = command({
  name: "build:upload",
  usage: "build:upload <product> <zip path>",
  summary: "set the product's build: a zip of at most 50 MB, sent to buyers with their key",
  positionals: { min: 2, max: 2 },
  parse: ({ positionals: [product, path] }) => ({ product: product!, path: path! }),
  run: async ({ shop, io }, input) => {
    const product = await shop.products.require(input.product);
    const build = await shop.builds.storeFile(product.id, input.path);
    io.out(`build uploaded: ${build.name}, ${build.size} bytes, sha256 ${build.sha256}`);
    return 0;
  },
});
