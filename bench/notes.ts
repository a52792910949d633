/**
 * What RESULTS.md says beyond the figures: for a target that a run misses, what limits it and what would move it
 * (by check id, or by benchmark for all its checks); and the list of hot-path fixes behind the before/after table.
 */
export const MISSED: Record<string, string> = {
  "auth.miss-database":
    "What limits it: a call that misses the cache does the app's whole HTTP path (what the hot path costs) *and* the " +
    "query, on the same two cores that PostgreSQL and wrk also use, while the ceiling is the query alone from the " +
    "bench process. Both together can at best run at hot·sql/(hot+sql), printed in the auth section: the miss path " +
    "reaches about three quarters of that, so ≥ 0.7 of the query alone cannot be had on this machine. The target " +
    "is ours, not the issue's (which sets 0.7 for the hot path, met). What would move it: PostgreSQL on its own " +
    "cores or host; fewer round trips are not available (the miss is one statement, prepared, and its last-seen " +
    "stamp is batched into one write a second).",
  "allocation.skip-locked":
    "What limits it: with plain FOR UPDATE only the part of the transaction after the row lock is serialised (the " +
    "order insert, the key update, the log event and the commit: four short round trips), while everything before " +
    "it (the buyer's advisory lock, the price, the existing-order check) still runs in parallel. SKIP LOCKED removes " +
    "that serial part, but then 1 000 buyers through a pool of 10 are bound by CPU: two cores shared by Bun, ten " +
    "PostgreSQL backends and the bench. The ratio is at most (whole transaction) / (locked part) and two cores " +
    "cannot run ten backends in parallel, so it stays near 2×. What would move it: more cores (SKIP LOCKED scales " +
    "with them, plain FOR UPDATE does not), or a longer locked section, which would only make the baseline worse. " +
    "Merging the four statements into one would make both faster and the ratio smaller; correctness (no key twice, " +
    "no buyer told «sold out» while a key is free) holds in every run.",
  "auth.database":
    "The hot path answers from memory, so this ratio compares the app's HTTP work with one query from the bench " +
    "process; both move with whatever else runs on the two shared cores (0.55–0.76 over today's runs, per-round " +
    "figures in the auth section). A run below 0.7 is the machine's load, not a change in the code.",
  "auth.p99":
    "p99 at 64 connections on two shared cores moves with the machine's load (the constant route's p99, the " +
    "framework's own, is printed beside it).",
  "auth.signed":
    "What limits it: one Ed25519 signature through node:crypto costs 25–35 µs of a core here (BoringSSL; libsodium " +
    "through bun:ffi measured the same), about as much as the rest of a cached answer, so signed/unsigned sits near " +
    "0.5 by construction. A CPU profile of the signed path under wrk: `sign` 17 % of the samples, Elysia's composed " +
    "handler and Bun's native HTTP most of the rest; the key's rate-limit digest and the panel's global hooks about " +
    "1 % each, so nothing of the signature's size is left to shed. Answers without a nonce reuse the signature of " +
    "identical bytes (Ed25519 is deterministic): old loaders and every repeated refusal cost no signing. What would " +
    "move it: more cores, one app process each (setup.sh --instances): signing is per-process CPU work and scales " +
    "with them.",
  "auth.signed-p99":
    "p99 at 64 connections on two shared cores moves with the machine's load like auth.p99 (the unsigned path's p99 " +
    "is printed beside it); a signed answer adds one signature's time, tens of microseconds, to the median.",
  "auth.bare":
    "What limits it: bare Elysia answers a constant without reading the request (7–8 µs of CPU per request here, " +
    "Bun's HTTP work), while a licence check must read the body, find the client's address, count two rate limits, " +
    "judge the key and write the answer: about 3.5 µs of our JavaScript per call measured in-process. By CPU per " +
    "served request the unsigned hot path (~15 µs) now costs what a constant route inside the same app costs (also " +
    "~15 µs, a row of the auth section): what is left is the app process itself — a bigger heap (RSS about 110 MB against the " +
    "bare app's 56 MB) for the collector to walk, Elysia's per-request context on the other routes — not the licence check. " +
    "req/s moves with whatever else runs on the two shared cores. What would move it: fewer allocations per call, " +
    "a smaller resident heap; the hooks, Elysia's per-route context and every await on the hot path are gone.",
  "mismatch-recording.hot":
    "The hot path is the same code in both apps (the recording runs only on a refusal), so this ratio is the " +
    "machine's noise: its per-round ratios, in its section, straddle 1.0 (the load average was above 10 during it).",
  "auth.table-size":
    "The lookup is two index scans whatever the size (plans in the auth section: 4 buffers at 1 000 000 keys, 3 at " +
    "1 000); pairs of 2 s runs on a shared machine scatter by ±10 %.",
  memory:
    "Resident memory is the JavaScript heap plus what the allocator keeps after the busiest moment. The app runs " +
    "with BUN_JSC_forceRAMSize=536870912 (setup.sh); without it JavaScriptCore sized for this 24 GiB host let the " +
    "heap climb to 160–223 MB while only 40–60 MB were live.",
};

export const FIXES = [
  "What changed between the two runs, from the profiles:",
  "",
  "- **Catalogue rebuild** read stock with `count(*)` over every available key (1 000 000 here): 401 ms p50. It now " +
    "sums `key_counts`, the per-product, per-duration, per-state counts that triggers keep in the same transaction " +
    "as every key change — exact, and a few rows per offer. A rebuild runs after every sale (each invalidates the " +
    "cache) and on every view while Redis is down.",
  "- **Last-seen stamps** of the auth API were one UPDATE per call for a key not seen in five minutes, sent without " +
    "waiting: under a flood of distinct keys a write per read, and queries piling up in the client. They are now " +
    "collected and written once a second with one `UPDATE … FROM unnest()`, capped at 20 000 pending.",
  "- **Memory**: the app runs with its garbage collector sized for 512 MB (`BUN_JSC_forceRAMSize`, set by " +
    "setup.sh); RSS under the auth load and under the flood of distinct keys fell from 184 / 223 MB to about " +
    "115–125 MB at the same throughput (A/B runs of the hot path: no measurable change).",
  "- **Hot path vs bare Elysia** (issue 17 item 1, 2026-12-06). Profiled under wrk: Elysia built every route with " +
    "what any route of the app needs — a cookie jar, the query parsed, the body parsed by its own parser, the error " +
    "handler and a `setImmediate` for the request log after each answer — and the call awaited the rate limiter, " +
    "the verdict and the answer even when all three were ready. The auth API now reaches Bun's router directly " +
    "(Bun.serve `routes`), reads its body itself, tallies itself and answers its own errors (signed); the rate " +
    "limiter, the verdict from memory and the answer return without a promise when they have nothing to wait for; " +
    "the key's rate-limit digest is remembered for recent keys. Same run, same wrk script, rounds taking turns " +
    "(load average 9.6–10.9): CPU per served request, unsigned, 21.2–23.7 µs before, 14.6–16.9 µs after, bare " +
    "Elysia 7.5–7.9 µs; throughput vs bare, per round, 0.48 / 0.51 / 0.41 / 0.60 before, 0.45 / 0.54 / 0.58 / 0.69 " +
    "after (the load moves req/s, CPU per request hardly).",
  "- **Delivery latency** (issue 17 item 5, new in this run): from AnyPay's notification accepted to the Bot API " +
    "receiving sendDocument, p95 29–77 ms in the first runs against the 500 ms target, so nothing was changed: a " +
    "paid order's delivery wakes the outbox at once (the 5 s poll is only the fallback).",
  "- The first activations now run on an app of their own (E), as the flood already did (D), so app A's memory " +
    "figure is its own load's; the catalogue bench serves exactly 10 000 reads from each source per round.",
].join("\n");
