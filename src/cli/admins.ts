import { LOGIN_PATTERN } from "../shop/accounts/accounts.ts";
import { command, telegramId, UsageError } from "./command.ts";

/** The CLI's commands for who runs the shop: the panel's account, and the bot's admins. */

export const adminReset = command({
  name: "admin:reset",
  usage: "admin:reset [login]",
  summary: "create the panel account or give it a new password (login: admin by default)",
  positionals: { min: 0, max: 1 },
  parse: ({ positionals: [login = "admin"] }) => {
    if (!LOGIN_PATTERN.test(login)) throw new UsageError("login must be 1–64 of A-Z a-z 0-9 . _ -");
    return login;
  },
  run: async ({ shop, io }, login) => {
    const account = await shop.accounts.reset(login);
    io.out(`login: ${account.login}`);
    io.out(`password: ${account.password}`);
    return 0;
  },
});

export const adminsAdd = command({
  name: "admins:add",
  usage: "admins:add <telegram id>",
  summary: "let a Telegram user use the bot's admin functions",
  positionals: { min: 1, max: 1 },
  parse: ({ positionals: [id] }) => telegramId(id!),
  run: async ({ shop, io }, id) => {
    if (!(await shop.admins.add(id))) {
      // As the panel says it: the admin stays as they were (their note too), and a script learns nothing was added.
      io.err(`error: ${id} уже администратор — ничего не изменено`);
      return 1;
    }
    io.out(`admin added: ${id}`);
    return 0;
  },
});

export const adminsRemove = command({
  name: "admins:remove",
  usage: "admins:remove <telegram id>",
  summary: "take the bot's admin functions away from a Telegram user",
  positionals: { min: 1, max: 1 },
  parse: ({ positionals: [id] }) => telegramId(id!),
  run: async ({ shop, io }, id) => {
    await shop.admins.remove(id);
    io.out(`admin removed: ${id}`);
    return 0;
  },
});
