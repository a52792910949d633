import { migrate } from "../db/migrate.ts";
import { command } from "./command.ts";

/** The CLI's command for the database: migrations (safe from several processes at once). */

export const migrateDatabase = command({
  name: "migrate",
  usage: "migrate",
  summary: "apply pending database migrations (safe from several processes at once)",
  positionals: { min: 0, max: 0 },
  migrates: true,
  parse: () => null,
  run: async ({ sql, io }) => {
    const result = await migrate(sql);
    for (const file of result.applied) io.out(`applied ${file}`);
    io.out(`database is up to date (${result.current ?? "no migrations"})`);
    return 0;
  },
});
