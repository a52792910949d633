import { Elysia } from "elysia";
import { log } from "../lib/log.ts";
import { pathOf } from "./path.ts";

const started = new WeakMap<Request, number>();

/** How often the auth API's tally is written: one line per path and status per minute. */
export const TALLY_EVERY_MS = 60_000;

/** Auth API calls answered since the last tally line, by method, path and status. */
type Tally = { method: string; path: string; status: number; count: number; totalMs: number; maxMs: number };
const tally = new Map<string, Tally>();
let tallyTimer: ReturnType<typeof setInterval> | null = null;
let tallySince = Date.now();

/** Caddy's health check of each app process (the Caddyfile's health_uri). */
const BALANCER_PROBE = /\/healthz\?scope=process$/;

/**
 * Writes the auth API's tally: one `requests` line per method, path and status with how many calls were answered
 * since the last one and how long they took. Runs every TALLY_EVERY_MS and at shutdown.
 */
export function flushRequestTally(): void {
  const seconds = Math.round((Date.now() - tallySince) / 1000);
  tallySince = Date.now();
  for (const t of tally.values()) {
    log.info("requests", {
      method: t.method,
      path: t.path,
      status: t.status,
      count: t.count,
      avgMs: Math.round((t.totalMs / t.count) * 10) / 10,
      maxMs: Math.round(t.maxMs * 10) / 10,
      seconds,
    });
  }
  tally.clear();
}

/** Distinct paths kept per tally: product names in URLs come from outside, so their number must be bounded. */
const MAX_TALLY_ENTRIES = 1_000;
const OTHER_PATHS = "(other auth API paths)";

/**
 * A loader's call, answered: tallied (see requestLog for why), except a server error (5xx), which keeps a line of
 * its own. The auth API calls this itself: its routes answer ahead of the shop's hooks (src/server.ts).
 */
export function tallyAuthCall(method: string, path: string, status: number, elapsedMs: number): void {
  const ms = Math.round(elapsedMs * 10) / 10;
  if (status >= 500) log.info("request", { method, path, status, ms });
  else count(method, path, status, ms);
}

function count(method: string, path: string, status: number, ms: number): void {
  let id = `${status} ${method} ${path}`;
  if (!tally.has(id) && tally.size >= MAX_TALLY_ENTRIES) {
    path = OTHER_PATHS;
    id = `${status} ${method} ${path}`;
  }
  const entry = tally.get(id);
  if (entry) {
    entry.count++;
    entry.totalMs += ms;
    if (ms > entry.maxMs) entry.maxMs = ms;
  } else {
    tally.set(id, { method, path, status, count: 1, totalMs: ms, maxMs: ms });
  }
  if (!tallyTimer) {
    tallySince = Date.now();
    tallyTimer = setInterval(flushRequestTally, TALLY_EVERY_MS);
    // Never keep a stopping process alive for a tally; shutdown writes the last one itself.
    tallyTimer.unref?.();
  }
}

/**
 * One line per request: method, path (query left out: it may carry a key), status and time. The loaders' auth API
 * calls (which answer ahead of this hook and report through tallyAuthCall) are the exception: thousands a second would cost a JSON line and a write each, and journald (which keeps
 * at most 10 000 lines per 30 s per service by default) would then drop everyone's lines, errors included. They
 * are tallied instead — one `requests` line per path and status per minute, with count, average and maximum time —
 * except server errors (5xx), which keep their own line.
 */
export const requestLog = new Elysia({ name: "request-log" })
  .onRequest(({ request }) => {
    started.set(request, performance.now());
  })
  .onAfterResponse({ as: "global" }, ({ request, set, responseValue }) => {
    const t0 = started.get(request);
    const ms = t0 === undefined ? 0 : Math.round((performance.now() - t0) * 10) / 10;
    const path = pathOf(request.url);
    // A handler that returns a Response of its own (static files, Telegram's webhook) sets its status there, not in
    // `set`: reading only `set` logged their 404s and 503s as 200.
    const status =
      responseValue instanceof Response ? responseValue.status : typeof set.status === "number" ? set.status : 200;
    // Caddy asks every process every 2 s whether it serves: a line for each "yes" would bury the others.
    if (status === 200 && BALANCER_PROBE.test(request.url)) return;
    log.info("request", { method: request.method, path, status, ms: t0 === undefined ? undefined : ms });
  });
