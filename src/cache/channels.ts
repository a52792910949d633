/**
 * Channels on which a process tells every other process (and itself) that something changed, after the change
 * has committed. Messages are small JSON strings.
 */
export const CHANNELS = {
  settings: "changes:settings",
  catalogue: "changes:catalogue",
  keys: "changes:keys",
  admins: "changes:admins",
  /** A licence-answer signing key was added or retired: every process re-reads its keys. */
  signingKeys: "changes:signing-keys",
  /** A broadcast was created: wakes the broadcast job at once instead of at its next poll. */
  broadcasts: "changes:broadcasts",
} as const;
