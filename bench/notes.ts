/**
 * What RESULTS.md says beyond the figures: for a target that a run misses, what limits it and what would move it
 * (by check id, or by benchmark for all its checks); and the list of hot-path fixes behind the before/after table.
 */
export const MISSED: Record<string, string> = {};

export const FIXES = "";
