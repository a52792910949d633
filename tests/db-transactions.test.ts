import { expect, setDefaultTimeout, test } from "bun:test";
import postgres from "postgres";
import { testDatabase } from "./helpers/shop.ts";

// Hang protection only: cloning a database, starting servers or a bot can take seconds on a loaded CI machine,
// and bun's 5 s default (which also bounds beforeAll/afterAll) would then fail a test that is merely slow.
setDefaultTimeout(30_000);

/**
 * postgres 3.4.9 could send a transaction's BEGIN without reserving its connection when the BEGIN filled the
 * connection's pipeline (porsager/postgres#823, #1189): the transaction failed with UNSAFE_TRANSACTION, and worse,
 * other callers' queries then ran inside the stray transaction. The 1 000-buyer allocation benchmark hit it; the
 * shop runs a patched copy (patches/postgres@3.4.9.patch). This reproduces the pipeline boundary on purpose.
 */
test("transactions stay on their own connection when BEGIN fills a pipeline", async () => {
  const db = await testDatabase();
  await db.sql.end();
  // max_pipeline is a real option of the client that its type declarations leave out.
  const options = { max: 3, max_pipeline: 2, onnotice: () => {} };
  const sql = postgres(db.url, options);
  try {
    await sql`create table ledger (id serial primary key, n int not null)`;
    const failures: string[] = [];
    for (let round = 0; round < 6; round++) {
      // Every connection busy, then plain queries and transactions alternating, so some BEGIN is the query that
      // fills a connection's pipeline. execute() sends a query now instead of on the next tick.
      const busy = Array.from({ length: 3 }, () => sql`select pg_sleep(0.1)`.execute());
      const work: Promise<unknown>[] = [];
      for (let i = 0; i < 5; i++) {
        work.push(sql`select ${i}::int as i`.execute());
        work.push(
          sql
            .begin(async (tx) => {
              await tx`insert into ledger (n) values (${round * 10 + i})`;
            })
            .catch((error: Error & { code?: string }) => {
              failures.push(error.code ?? error.message);
            }),
        );
      }
      await Promise.all([...busy, ...work]);
    }
    expect(failures).toEqual([]);
    const [count] = await sql<{ n: number }[]>`select count(*)::int as n from ledger`;
    expect(count!.n).toBe(30);
    // No connection was left inside a transaction that never committed.
    const idle = await sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and state = 'idle in transaction'`;
    expect(idle[0]!.n).toBe(0);
  } finally {
    await sql.end({ timeout: 2 });
  }
});

/**
 * The client's pool keeps its busy connections in a queue that, under sustained load, is never empty: each query
 * shifts a connection out and pushes it back. Unpatched, every shift left a hole that was never reclaimed and every
 * query's remove() scanned all of them, so the auth API slowed down the longer it was busy (19 000 → 11 000 req/s
 * in 24 s, bench/auth). The patched queue keeps only live slots; this checks it still behaves as a queue.
 */
test("the pool's queue stays a correct FIFO when it is never emptied", async () => {
  // @ts-expect-error: an internal module of the client, without type declarations
  const { default: Queue } = (await import("../node_modules/postgres/src/queue.js")) as {
    default: () => { length: number; push(x: number): number; shift(): number; remove(x: number): number | null };
  };
  const queue = Queue();
  for (let i = 0; i < 10; i++) queue.push(i);
  const seen: number[] = [];
  for (let n = 0; n < 5_000; n++) {
    const x = queue.shift();
    seen.push(x);
    // What the pool does with a connection it took from "busy": move it out (no longer there) and back in.
    expect(queue.remove(x)).toBeNull();
    queue.push(x);
  }
  expect(queue.length).toBe(10);
  expect(seen.slice(0, 12)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
  expect(seen.at(-1)).toBe(4_999 % 10);
  // A connection that is in the queue is found and taken out, wherever it sits.
  expect(queue.remove(7)).toBe(7);
  expect(queue.length).toBe(9);
  const rest = Array.from({ length: 9 }, () => queue.shift());
  expect(rest.sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 8, 9]);
  expect(queue.length).toBe(0);
});
