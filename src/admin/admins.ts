import { Elysia } from "elysia";
import { AdminsPage, type AdminsProps, AdminsSection } from "../../templates/admins.tsx";
import type { View } from "../../templates/view.ts";
import type { Config } from "../config.ts";
import { parseTelegramId } from "../shop/admins.ts";
import { ShopError } from "../shop/errors.ts";
import type { Shop } from "../shop/index.ts";
import { errorView, panelGuard } from "./guard.ts";
import { field, guarded, idParam, isHtmx, redirect, render } from "./respond.ts";

/** Администраторы: the Telegram ids the bot treats as admins (shop.admins announces every change). */
export function adminsController(shop: Shop, config: Config) {
  const base = encodeURI(config.basePath);

  async function answer(request: Request, view: View, props: Omit<AdminsProps, "view" | "admins">, status = 200) {
    const full = { view, admins: await shop.admins.list(), ...props };
    if (isHtmx(request)) return render(AdminsSection(full), status);
    if (status < 400) return redirect(request, `${base}/admins`);
    return render(AdminsPage(full), status);
  }

  return new Elysia()
    .use(panelGuard(shop, config))
    .get("/admins", ({ request, panel }) =>
      guarded(
        request,
        async () => render(AdminsPage({ view: panel.view, admins: await shop.admins.list() })),
        errorView(request, panel.view),
      ),
    )
    .post("/admins", ({ request, body, panel }) =>
      guarded(
        request,
        async () => {
          const idText = field(body, "telegramId").trim();
          const note = field(body, "note").trim();
          const values = { telegramId: idText, note };
          const telegramId = parseTelegramId(idText);
          if (telegramId === null) {
            return answer(
              request,
              panel.view,
              { values, errors: { telegramId: "Telegram ID — положительное число" } },
              422,
            );
          }
          if (note.length > 200) {
            return answer(request, panel.view, { values, errors: { note: "Заметка длиннее 200 символов" } }, 422);
          }
          try {
            await shop.admins.add(telegramId, note);
          } catch (error) {
            if (error instanceof ShopError && error.code === "invalid") {
              return answer(request, panel.view, { values, errors: { [error.field ?? "_"]: error.message } }, 422);
            }
            throw error;
          }
          return answer(request, panel.view, { saved: `${telegramId} теперь администратор бота.` });
        },
        errorView(request, panel.view),
      ),
    )
    .post("/admins/:telegramId/delete", ({ request, params, panel }) =>
      guarded(
        request,
        async () => {
          const telegramId = idParam(params.telegramId);
          if (telegramId === null) return answer(request, panel.view, { errors: { _: "Неверный Telegram ID" } }, 404);
          try {
            await shop.admins.remove(telegramId);
          } catch (error) {
            if (error instanceof ShopError && error.code === "not_found") {
              return answer(request, panel.view, { errors: { _: error.message } }, 404);
            }
            throw error;
          }
          return answer(request, panel.view, { saved: `${telegramId} больше не администратор.` });
        },
        errorView(request, panel.view),
      ),
    );
}
