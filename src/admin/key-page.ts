import { KeyMain, KeyPage } from "../../templates/key.tsx";
import type { View } from "../../templates/view.ts";
import { notFound, ShopError } from "../shop/errors.ts";
import { actor } from "../shop/keys/events.ts";
import type { KeyCard } from "../shop/keys/timeline.ts";
import type { PanelContext } from "./context.ts";
import type { PanelRoutes } from "./guard.ts";
import { applyKeyAction, keyAction } from "./key-actions.ts";
import { idParam, isHtmx, isPartial, redirect, render } from "./respond.ts";

/**
 * A key's own page (BASE_PATH/keys/:id): what it is now, the actions on it, and its whole timeline. Every place the
 * panel shows a key links here. A key that does not exist, or no longer does, is the panel's 404 page.
 */
export function keyPageRoutes(routes: PanelRoutes, panel: PanelContext) {
  const { shop } = panel;

  async function requireKey(idText: string | undefined): Promise<KeyCard> {
    const id = idParam(idText);
    const card = id === null ? null : await shop.keys.card(id);
    if (!card) throw notFound("Такого ключа нет: возможно, он удалён.");
    return card;
  }

  async function answer(
    request: Request,
    view: View,
    keyId: number,
    options: { notice?: { kind: "ok" | "error"; text: string }; status?: number } = {},
  ): Promise<Response> {
    const card = await requireKey(String(keyId));
    const props = { view, card, timeline: await shop.keys.timeline(keyId), notice: options.notice };
    return render(isPartial(request) ? KeyMain(props) : KeyPage(props), options.status ?? 200);
  }

  return routes
    .get("/keys/:id", async ({ request, params, panel: p }) => {
      const card = await requireKey(params.id);
      return answer(request, p.view, card.id);
    })
    .post("/keys/:id/:action", async ({ request, params, body, panel: p }) => {
      const card = await requireKey(params.id);
      const action = keyAction(params.action);
      if (!action) throw notFound("Такого действия с ключом нет.");
      let saved: string;
      try {
        saved = await applyKeyAction(shop, card.id, action, body, actor.panel(p.account.login));
      } catch (error) {
        // A refusal is shown above the key, which stays as it was; a plain form post gets the whole page with it.
        if (error instanceof ShopError && error.code === "invalid") {
          return answer(request, p.view, card.id, { notice: { kind: "error", text: error.message }, status: 422 });
        }
        throw error;
      }
      if (!isHtmx(request)) return redirect(request, `${panel.base}/keys/${card.id}`);
      return answer(request, p.view, card.id, { notice: { kind: "ok", text: saved } });
    });
}
