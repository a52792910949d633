/**
 * Channels on which a process tells every other process (and itself) that something changed, after the change
 * has committed. Messages are small JSON strings.
 */
export const CHANNELS = {
  settings: "changes:settings",
  catalogue: "changes:catalogue",
  /** Keys whose cached auth answers are stale: a JSON list of key strings, or FORGET_ALL. */
  keys: "changes:keys",
  admins: "changes:admins",
  /** A licence-answer signing key was added or retired: every process re-reads its keys. */
  signingKeys: "changes:signing-keys",
  /** A broadcast was created: wakes the broadcast job at once instead of at its next poll. */
  broadcasts: "changes:broadcasts",
} as const;

/** On CHANNELS.keys: too many keys changed to list (a compensation): drop every cached auth answer. */
export const FORGET_ALL = "*";
