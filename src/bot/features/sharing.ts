import { Composer } from "gramio";
import { ADMIN_ONLY, type SharingAction, sharingAlertTexts } from "../../shop/texts/admins.ts";
import { pattern } from "../keyboards.ts";
import { answer, type BotDeps } from "../screen.ts";

/**
 * The buttons under a sharing alert (docs/panel.md#sharing-alerts): ban the key, reset its HWID, or leave it. The
 * press acts at once; every admin's copy of the alert is then edited by the alerts job to say who did what. Only an
 * admin's press does anything: the data of a button can be forged by anyone who knows its format.
 */
export function sharingAlerts(deps: BotDeps) {
  const { shop } = deps;

  return new Composer({ name: "sharing-alerts" }).callbackQuery(pattern.sharingAlert, async (ctx) => {
    const api = ctx.bot.api;
    const adminId = ctx.payload.from.id;
    if (!(await shop.admins.isAdmin(adminId))) return answer(api, ctx.payload.id, ADMIN_ONLY, { alert: true });
    const [, action, id] = ctx.queryData;
    const result = await shop.sharing.resolve(Number(id), action as SharingAction, adminId);
    const notice =
      result.outcome === "done"
        ? sharingAlertTexts.done(result.action)
        : result.outcome === "already"
          ? sharingAlertTexts.already(result.action, result.by)
          : sharingAlertTexts.GONE;
    await answer(api, ctx.payload.id, notice, { alert: result.outcome !== "done" });
  });
}
