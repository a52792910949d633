import { longerThan } from "./text.ts";

/**
 * Licence key strings. Generated keys use Crockford's base32 alphabet (no I, L, O, U) so that a buyer who retypes
 * a key cannot confuse 0/O or 1/I; imported keys keep whatever format the customer's old system used.
 */
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const GROUPS = 3;
const GROUP_LENGTH = 5;

/** A fresh `MPH-XXXXX-XXXXX-XXXXX` key: 75 bits from the CSPRNG, so guessing one is hopeless. */
export function generateKeyString(): string {
  const bytes = new Uint8Array(GROUPS * GROUP_LENGTH);
  crypto.getRandomValues(bytes);
  const groups: string[] = [];
  for (let g = 0; g < GROUPS; g++) {
    let group = "";
    for (let i = 0; i < GROUP_LENGTH; i++) {
      // 256 is a multiple of 32, so taking the low five bits keeps every symbol equally likely.
      group += CROCKFORD[(bytes[g * GROUP_LENGTH + i] ?? 0) & 31];
    }
    groups.push(group);
  }
  return `MPH-${groups.join("-")}`;
}

export const GENERATED_KEY_PATTERN = /^MPH-[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$/;

/** Printable ASCII without spaces or control characters: what a key or a HWID may contain. */
const PRINTABLE = /^[\x21-\x7e]+$/;

export const MAX_KEY_LENGTH = 128;
export const MAX_HWID_LENGTH = 128;

/** What is wrong with a key string, for each reader to put in their own words. */
export type KeyStringFault = "empty" | "too_long" | "not_printable";

export function keyStringFault(key: string): KeyStringFault | null {
  if (key.length === 0) return "empty";
  if (longerThan(key, MAX_KEY_LENGTH)) return "too_long";
  if (!PRINTABLE.test(key)) return "not_printable";
  return null;
}

/** A fault in English: the licence API's and the CLI's words (the panel has its own). */
export function keyFaultText(fault: KeyStringFault): string {
  switch (fault) {
    case "empty":
      return "empty";
    case "too_long":
      return `longer than ${MAX_KEY_LENGTH} characters`;
    case "not_printable":
      return "contains spaces or non-printable characters";
  }
}

/** Why a key string is refused, in English, or null when it is fine. */
export function keyStringProblem(key: string): string | null {
  const fault = keyStringFault(key);
  return fault ? keyFaultText(fault) : null;
}

/** Why a HWID sent by a loader is refused, or null when it is fine. */
export function hwidProblem(hwid: string): string | null {
  if (hwid.length === 0) return "empty";
  if (longerThan(hwid, MAX_HWID_LENGTH)) return `longer than ${MAX_HWID_LENGTH} characters`;
  // The contract says printable characters, not ASCII (docs/licence-api.md#the-request): a machine name may well be
  // Cyrillic. Control, format and unassigned code points are what is refused — and a value of spaces alone, which would
  // bind a key to nothing.
  if (/\p{C}/u.test(hwid)) return "contains non-printable characters";
  if (hwid.trim() === "") return "blank";
  return null;
}

/**
 * A key as it may appear in logs: enough to find it in the panel, not enough to use it. A generated key shows its
 * MPH- prefix and 4 of its 15 random characters; an imported key at most a quarter of itself (4 at most), at its end.
 */
export function maskKey(key: string): string {
  if (GENERATED_KEY_PATTERN.test(key)) return `MPH-…${key.slice(-4)}`;
  const shown = Math.min(4, Math.floor(key.length / 4));
  return shown > 0 ? `…${key.slice(-shown)}` : "…";
}
