import { BOT_TOKEN_PATTERN, NUMERIC_SETTINGS, numericSetting, type SettingsPatch } from "../shop/settings/settings.ts";
import { bool, command, UsageError, wholeNumber } from "./command.ts";

/** The CLI's commands for the shop's settings: the bot's token and switches, the numeric settings. */

export const botSet = command({
  name: "bot:set",
  usage: "bot:set [--token <token>|-] [--enabled true|false] [--maintenance true|false] [--stars true|false]",
  summary: "bot settings (`--token -` reads the token from stdin, keeping it out of the shell history)",
  positionals: { min: 0, max: 0 },
  options: ["token", "enabled", "maintenance", "stars"],
  parse: ({ options }) => {
    if (options.size === 0) throw new UsageError("give at least one of --token, --enabled, --maintenance, --stars");
    const token = options.get("token");
    if (token !== undefined && token !== "-" && !BOT_TOKEN_PATTERN.test(token)) {
      throw new UsageError("--token must look like 123456789:AA… (from @BotFather)");
    }
    const enabled = options.get("enabled");
    const maintenance = options.get("maintenance");
    const stars = options.get("stars");
    return {
      token,
      enabled: enabled === undefined ? undefined : bool(enabled, "enabled"),
      maintenance: maintenance === undefined ? undefined : bool(maintenance, "maintenance"),
      stars: stars === undefined ? undefined : bool(stars, "stars"),
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
    if (input.stars !== undefined) patch.starsEnabled = input.stars;
    const s = await shop.settings.update(patch);
    io.out(
      `bot: ${s.botEnabled ? "on" : "off"}, maintenance: ${s.maintenance ? "on" : "off"}, stars: ${s.starsEnabled ? "on" : "off"}, token: ${s.botToken ? "set" : "not set"}`,
    );
    return 0;
  },
});

export const settingsSet = command({
  name: "settings:set",
  usage: "settings:set <name> <value>",
  summary: `set a numeric setting: ${NUMERIC_SETTINGS.map((s) => `${s.name} (${s.min}–${s.max})`).join(", ")}`,
  positionals: { min: 2, max: 2 },
  parse: ({ positionals: [name, value] }) => {
    const setting = numericSetting(name!);
    if (!setting) {
      throw new UsageError(
        `unknown setting "${name}"; the settings are ${NUMERIC_SETTINGS.map((s) => s.name).join(", ")}`,
      );
    }
    return { setting, value: wholeNumber(value!, setting.name, setting.min, setting.max) };
  },
  run: async ({ shop, io }, { setting, value }) => {
    const saved = await shop.settings.update({ [setting.field]: value });
    io.out(`${setting.name}: ${saved[setting.field]}`);
    return 0;
  },
});
