import { Elysia } from "elysia";

/**
 * The framework's own ceiling for bench/auth: a bare Elysia app, nothing of ours (no hooks, no request log, no error
 * handling), answering the auth API's success shape as a constant on the auth API's path. Its own process, started
 * like the apps and measured with the same wrk settings in the same run, so "hot path / bare" says how much of the
 * framework's speed our own code keeps.
 */
const CONSTANT = { success: true, message: "OK", days: 29, hours: 23, expires_at: "2030-01-01T00:00:00.000Z" };
const port = Number(process.env.PORT ?? 0);
const app = new Elysia()
  .get("/:base/api/:product/auth", () => CONSTANT)
  .post("/:base/api/:product/auth", () => CONSTANT)
  .get("/:base/healthz", () => ({ ok: true }))
  .listen({ hostname: "127.0.0.1", port });
console.error(`bare Elysia listening on 127.0.0.1:${app.server!.port}`);
process.on("SIGTERM", async () => {
  await app.stop(true);
  process.exit(0);
});
