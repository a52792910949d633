import { BOT_TOKEN_PATTERN, type SettingsPatch } from "../shop/settings/settings.ts";
import { bool, command, UsageError } from "./command.ts";

/** The CLI's commands for the shop's settings: the bot's token and switches. */

export const botSet = command({
  name: "bot:set",
  usage: "bot:set [--token <token>|-] [--enabled true|false] [--maintenance true|false]",
  summary: "bot settings (`--token -` reads the token from stdin, keeping it out of the shell history)",
  positionals: { min: 0, max: 0 },
  options: ["token", "enabled", "maintenance"],
  parse: ({ options }) => {
    if (options.size === 0) throw new UsageError("give at least one of --token, --enabled, --maintenance");
    const token = options.get("token");
    if (token !== undefined && token !== "-" && !BOT_TOKEN_PATTERN.test(token)) {
      throw new UsageError("--token must look like 123456789:AA… (from @BotFather)");
    }
    const enabled = options.get("enabled");
    const maintenance = options.get("maintenance");
    return {
      token,
      enabled: enabled === undefined ? undefined : bool(enabled, "enabled"),
      maintenance: maintenance === undefined ? undefined : bool(maintenance, "maintenance"),
    };
  },
  run: async ({ shop, io }, input) => {
    const patch: SettingsPatch = {};
    if (input.token !== undefined) {
      const token = input.token === "-" ? (await io.readStdin()).trim() : input.token;
      if (!BOT_TOKEN_PATTERN.test(token)) {
        io.err("error: the token from stdin must look like 123456789:AA… (from @BotFather)");
        return 2;
      }
      patch.botToken = token;
    }
    if (input.enabled !== undefined) patch.botEnabled = input.enabled;
    if (input.maintenance !== undefined) patch.maintenance = input.maintenance;
    const s = await shop.settings.update(patch);
    io.out(
      `bot: ${s.botEnabled ? "on" : "off"}, maintenance: ${s.maintenance ? "on" : "off"}, token: ${s.botToken ? "set" : "not set"}`,
    );
    return 0;
  },
});
