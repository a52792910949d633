/**
 * The Russian plural, one rule for the whole shop (the bot, the panel, the CLI): which of a word's three forms goes
 * with a count. The rule is CLDR's, as the runtime's Intl carries it: 1, 21, 101 → «one»; 2–4, 22–24 → «few»;
 * 0, 5–20, 25–30, 111 → «many».
 */
const rules = new Intl.PluralRules("ru");

/** A word's forms for one, few and many: ["день", "дня", "дней"], ["увидит", "увидят", "увидят"]. */
export type PluralForms = readonly [one: string, few: string, many: string];

export function plural(n: number, forms: PluralForms): string {
  switch (rules.select(n)) {
    case "one":
      return forms[0];
    case "few":
      return forms[1];
    default:
      return forms[2];
  }
}

/** The count and the word that agrees with it: counted(21, USERS) → "21 пользователь". */
export function counted(n: number, forms: PluralForms): string {
  return `${n} ${plural(n, forms)}`;
}

export const DAYS: PluralForms = ["день", "дня", "дней"];
export const USERS: PluralForms = ["пользователь", "пользователя", "пользователей"];
export const KEYS: PluralForms = ["ключ", "ключа", "ключей"];
