/**
 * Text a person typed, as the shop stores it: trimmed, Windows line breaks made plain, and no control characters
 * except line breaks and tabs. Postgres refuses a NUL in text (so one would turn a save into an error), and
 * nothing else invisible belongs in a note, a description or a name. Bidirectional overrides go too: one in a
 * Telegram name would make the panel show the rest of a table row backwards.
 */
export function plainText(text: string): string {
  return (
    text
      .replace(/\r\n?/g, "\n")
      // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, "")
      .trim()
  );
}

/** The same for one-line values (names): line breaks and tabs become spaces. */
export function plainLine(text: string): string {
  return plainText(text).replace(/[\n\t]+/g, " ");
}

/**
 * Whether the text has more than `max` characters, counted as a person and PostgreSQL's char_length count them:
 * code points, not JavaScript's UTF-16 units (an emoji is one character, not two).
 */
export function longerThan(text: string, max: number): boolean {
  // A code point is one or two UTF-16 units: most texts need no counting at all.
  if (text.length <= max) return false;
  if (text.length > 2 * max) return true;
  let count = 0;
  for (const _ of text) if (++count > max) return true;
  return false;
}
