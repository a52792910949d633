import { keyFaultText } from "../lib/keys.ts";
import { MAX_COMPENSATION_DAYS, MAX_GENERATE } from "../shop/keys/keys.ts";
import { command, days, keyString, telegramId, wholeNumber } from "./command.ts";

/** The CLI's commands for licence keys: generated, imported, issued by hand, their HWID cleared. */

export const keysGenerate = command({
  name: "keys:generate",
  usage: "keys:generate <product> <days> <count>",
  summary: `generate MPH-XXXXX-XXXXX-XXXXX keys (at most ${MAX_GENERATE}); prints them one per line`,
  positionals: { min: 3, max: 3 },
  parse: ({ positionals: [product, d, count] }) => ({
    product: product!,
    days: days(d!),
    count: wholeNumber(count!, "count", 1, MAX_GENERATE),
  }),
  run: async ({ shop, io }, input) => {
    const product = await shop.products.require(input.product);
    const keys = await shop.keys.generate(product.id, input.days, input.count, "cli");
    io.out(keys.join("\n"));
    return 0;
  },
});

export const keysImport = command({
  name: "keys:import",
  usage: "keys:import <product> <days> < keys.txt",
  summary: "import keys from stdin, one per line; prints `imported N, duplicates M`",
  positionals: { min: 2, max: 2 },
  parse: ({ positionals: [product, d] }) => ({ product: product!, days: days(d!) }),
  run: async ({ shop, io }, input) => {
    const product = await shop.products.require(input.product);
    if (process.stdin.isTTY) io.err("paste the keys, one per line, then press Ctrl-D");
    const result = await shop.keys.importText(product.id, input.days, await io.readStdin(), "cli");
    io.out(`imported ${result.imported}, duplicates ${result.duplicates}`);
    if (result.invalid.length === 0) return 0;
    for (const bad of result.invalid.slice(0, 20)) io.err(`line ${bad.line}: ${keyFaultText(bad.fault)}`);
    if (result.invalid.length > 20) io.err(`… and ${result.invalid.length - 20} more`);
    io.err(`error: ${result.invalid.length} invalid line(s) skipped; the other keys were imported`);
    return 1;
  },
});

export const keysIssue = command({
  name: "keys:issue",
  usage: "keys:issue <product> <days> [--to <telegram id>]",
  summary: "sell one available key without payment (gift, support case); prints it",
  positionals: { min: 2, max: 2 },
  options: ["to"],
  parse: ({ positionals: [product, d], options }) => {
    const to = options.get("to");
    return { product: product!, days: days(d!), to: to === undefined ? undefined : telegramId(to) };
  },
  run: async ({ shop, io }, input) => {
    const product = await shop.products.require(input.product);
    const key = await shop.keys.issue(product.id, input.days, input.to, "", "cli");
    io.out(key.key);
    return 0;
  },
});

export const keysResetHwid = command({
  name: "keys:reset-hwid",
  usage: "keys:reset-hwid <key>",
  summary: "clear a sold key's HWID so the next PC binds; the expiry stays",
  positionals: { min: 1, max: 1 },
  parse: ({ positionals: [key] }) => keyString(key!),
  run: async ({ shop, io }, key) => {
    const record = await shop.keys.resetHwid({ key }, "cli");
    const expiry = record.expiresAt ? `expires ${record.expiresAt.toISOString()}` : "not activated yet";
    io.out(`HWID cleared: ${record.key} (${expiry})`);
    return 0;
  },
});

export const keysCompensate = command({
  name: "keys:compensate",
  usage: "keys:compensate <product> <days>",
  summary: `add 1–${MAX_COMPENSATION_DAYS} days to every activated, unexpired, unbanned key of a product (downtime); prints \`compensated N keys\``,
  positionals: { min: 2, max: 2 },
  parse: ({ positionals: [product, d] }) => ({
    product: product!,
    days: wholeNumber(d!, "days", 1, MAX_COMPENSATION_DAYS),
  }),
  run: async ({ shop, io }, input) => {
    const product = await shop.products.require(input.product);
    const count = await shop.keys.compensate(product.id, input.days, "cli");
    io.out(`compensated ${count} keys`);
    return 0;
  },
});
