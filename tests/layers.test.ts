/**
 * The one direction of dependency (docs/development.md): lib → config → db, cache → shop → payments → {api, admin,
 * bot, jobs} (+ templates) → main. Read from the code's own import lines, so a change that breaks a rule fails here
 * with the file and the import that broke it, before anyone has to notice it in review.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = join(import.meta.dir, "..");

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((name) => /\.tsx?$/.test(name))
    .map((name) => join(dir, name));
}

type Import = { file: string; spec: string; target: string };

/** Every import of a file: `target` is the imported file's path from the root, or the package name. */
function importsOf(file: string): Import[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const found: Import[] = [];
  for (const m of text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"|^import\s+"([^"]+)"/gms)) {
    const spec = (m[1] ?? m[2])!;
    const target = spec.startsWith(".") ? relative(ROOT, resolve(ROOT, dirname(file), spec)) : spec;
    found.push({ file, spec, target });
  }
  return found;
}

const FILES = [...sourceFiles("src"), ...sourceFiles("templates")];
const IMPORTS = FILES.flatMap(importsOf);

const under = (dir: string) => (path: string) => path.startsWith(`${dir}/`);
const ADAPTERS = ["src/api", "src/admin", "src/bot", "src/jobs"];

/** The imports from files under `from` that `forbidden` picks out, as "file → import" lines. */
function offending(from: string[], forbidden: (target: string) => boolean): string[] {
  return IMPORTS.filter((i) => from.some((dir) => under(dir)(i.file)) && forbidden(i.target)).map(
    (i) => `${i.file} → ${i.spec}`,
  );
}

const FRAMEWORKS = (target: string) => /^(elysia|@elysiajs\/|gramio|@gramio\/|@kitajs\/html)/.test(target);

describe("the layers hold", () => {
  test("the import lines are read (a sanity check of this test itself)", () => {
    expect(IMPORTS.filter((i) => i.file === "src/server.ts").length).toBeGreaterThan(5);
  });

  test("lib imports nothing of the shop's own but lib", () => {
    expect(
      offending(["src/lib"], (t) => (t.startsWith("src/") || t.startsWith("templates/")) && !under("src/lib")(t)),
    ).toEqual([]);
  });

  test("db and cache know nothing of the shop above them", () => {
    expect(
      offending(["src/db", "src/cache"], (t) =>
        ["src/shop", "src/payments", "src/http", "templates", ...ADAPTERS].some((d) => under(d)(t)),
      ),
    ).toEqual([]);
  });

  test("the domain (shop, payments) imports no framework, template, HTTP helper or adapter", () => {
    expect(
      offending(
        ["src/shop", "src/payments"],
        (t) => FRAMEWORKS(t) || ["templates", "src/http", ...ADAPTERS].some((d) => under(d)(t)),
      ),
    ).toEqual([]);
    expect(offending(["src/shop"], under("src/payments"))).toEqual([]);
  });

  test("adapters import neither each other nor the stores: they ask the shop", () => {
    for (const adapter of ADAPTERS) {
      const others = ADAPTERS.filter((a) => a !== adapter);
      expect(offending([adapter], (t) => others.some((o) => under(o)(t)))).toEqual([]);
    }
    expect(offending([...ADAPTERS, "src/http"], (t) => under("src/db")(t) || under("src/cache")(t))).toEqual([]);
  });

  test("templates are pure: no framework but Kita's JSX, no adapter, no store", () => {
    expect(
      offending(
        ["templates"],
        (t) =>
          (FRAMEWORKS(t) && !t.startsWith("@kitajs/html")) ||
          ["src/db", "src/cache", "src/http", ...ADAPTERS].some((d) => under(d)(t)),
      ),
    ).toEqual([]);
  });
});
