import { AdminsPage, type AdminsProps, AdminsSection } from "../../templates/admins.tsx";
import type { View } from "../../templates/view.ts";
import { ShopError } from "../shop/errors.ts";
import { parseTelegramId } from "../shop/users/admins.ts";
import type { PanelContext } from "./context.ts";
import type { PanelRoutes } from "./guard.ts";
import { field, idParam, isHtmx, redirect, render } from "./respond.ts";

/** Администраторы: the Telegram ids the bot treats as admins (shop.admins announces every change). */
export function adminsRoutes(routes: PanelRoutes, panel: PanelContext) {
  const { shop, base } = panel;

  async function answer(request: Request, view: View, props: Omit<AdminsProps, "view" | "admins">, status = 200) {
    const full = { view, admins: await shop.admins.list(), ...props };
    if (isHtmx(request)) return render(AdminsSection(full), status);
    if (status < 400) return redirect(request, `${base}/admins`);
    return render(AdminsPage(full), status);
  }

  return routes
    .get("/admins", async ({ panel: p }) => render(AdminsPage({ view: p.view, admins: await shop.admins.list() })))
    .post("/admins", async ({ request, body, panel: p }) => {
      const idText = field(body, "telegramId").trim();
      const note = field(body, "note").trim();
      const values = { telegramId: idText, note };
      const telegramId = parseTelegramId(idText);
      if (telegramId === null) {
        return answer(request, p.view, { values, errors: { telegramId: "Telegram ID — положительное число" } }, 422);
      }
      if (note.length > 200) {
        return answer(request, p.view, { values, errors: { note: "Заметка длиннее 200 символов" } }, 422);
      }
      let added: boolean;
      try {
        added = await shop.admins.add(telegramId, note);
      } catch (error) {
        if (error instanceof ShopError && error.code === "invalid") {
          return answer(request, p.view, { values, errors: { [error.field ?? "_"]: error.message } }, 422);
        }
        throw error;
      }
      if (!added) {
        const existing = `${telegramId} уже администратор — ничего не изменено. Чтобы сменить заметку, уберите его и добавьте снова.`;
        return answer(request, p.view, { values, errors: { telegramId: existing } }, 409);
      }
      return answer(request, p.view, { saved: `${telegramId} теперь администратор бота.` });
    })
    .post("/admins/:telegramId/delete", async ({ request, params, panel: p }) => {
      const telegramId = idParam(params.telegramId);
      if (telegramId === null) return answer(request, p.view, { errors: { _: "Неверный Telegram ID" } }, 404);
      try {
        await shop.admins.remove(telegramId);
      } catch (error) {
        if (error instanceof ShopError && error.code === "not_found") {
          return answer(request, p.view, { errors: { _: error.message } }, 404);
        }
        throw error;
      }
      return answer(request, p.view, { saved: `${telegramId} больше не администратор.` });
    });
}
