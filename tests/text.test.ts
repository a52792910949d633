import { expect, test } from "bun:test";
import { daysLabel } from "../src/lib/durations.ts";
import { maskKey } from "../src/lib/keys.ts";
import { counted, plural } from "../src/lib/plural.ts";
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

test("one Russian plural for the whole shop: 1 and 21 take «one», 2–4 and 22 «few», 0, 5–20, 111 «many»", () => {
  const forms = ["пользователь", "пользователя", "пользователей"] as const;
  const words = [0, 1, 2, 4, 5, 11, 12, 14, 21, 22, 25, 101, 111, 1000].map((n) => counted(n, forms));
  expect(words).toEqual([
    "0 пользователей",
    "1 пользователь",
    "2 пользователя",
    "4 пользователя",
    "5 пользователей",
    "11 пользователей",
    "12 пользователей",
    "14 пользователей",
    "21 пользователь",
    "22 пользователя",
    "25 пользователей",
    "101 пользователь",
    "111 пользователей",
    "1000 пользователей",
  ]);
  expect(plural(1, ["увидит", "увидят", "увидят"])).toBe("увидит");
  expect(plural(3, ["увидит", "увидят", "увидят"])).toBe("увидят");
  expect([1, 7, 14, 21, 30, 90].map(daysLabel)).toEqual([
    "1 день",
    "7 дней",
    "14 дней",
    "21 день",
    "30 дней",
    "90 дней",
  ]);
});
