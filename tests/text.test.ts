import { expect, test } from "bun:test";
import { maskKey } from "../src/lib/keys.ts";
import { plainLine, plainText } from "../src/lib/text.ts";

test("plain text keeps words, line breaks and tabs, and drops what is invisible or refused by the database", () => {
  expect(plainText("  Привет\r\nмир\t!\u0000\u0007 ")).toBe("Привет\nмир\t!");
  expect(plainText("C1\u0085 control")).toBe("C1 control");
  // A right-to-left override would flip the rest of a panel row.
  expect(plainText("evil\u202egnp.exe")).toBe("evilgnp.exe");
  expect(plainText("isolate\u2066x\u2069")).toBe("isolatex");
  expect(plainLine("Иван\nПетров\t ")).toBe("Иван Петров");
});

test("a key in the logs shows at most 4 characters of it, and never more than a quarter of an imported one", () => {
  expect(maskKey("MPH-7K2QX-9PZ3M-D4W8N")).toBe("MPH-…4W8N");
  expect(maskKey("ABCDEFGHIJKLMNOP")).toBe("…MNOP");
  expect(maskKey("ABCDEFGHIJ")).toBe("…IJ");
  expect(maskKey("ABC")).toBe("…");
});
