import { type BroadcastDraft, BroadcastPreview, BroadcastProgress } from "../../templates/broadcasts.tsx";
import type { View } from "../../templates/view.ts";
import { Refusal } from "../http/errors.ts";
import { log } from "../lib/log.ts";
import { broadcastTextProblem, MAX_BROADCAST_TEXT } from "../shop/broadcasts/broadcasts.ts";
import { ShopError } from "../shop/errors.ts";
import type { PanelContext } from "./context.ts";
import type { PanelRoutes } from "./guard.ts";
import { field, idParam, isHtmx, redirect, render } from "./respond.ts";
import { broadcastBlock, settingsPage } from "./settings.ts";

/** A text field cut well past the limit: enough to say "too long" and give the text back, never megabytes. */
const textOf = (body: unknown) => field(body, "text").slice(0, MAX_BROADCAST_TEXT * 4);

const NOT_FOUND = "Такой рассылки нет.";

/**
 * The broadcast card of the settings tab, under {BASE_PATH}/broadcasts: preview, send or edit, stop, and the
 * progress that a running broadcast polls. htmx gets the card (or one broadcast) back; a plain form post gets the
 * settings page with the card in the state it asked for.
 */
export function broadcastsRoutes(routes: PanelRoutes, panel: PanelContext) {
  const { shop, base } = panel;

  /** The card with the form (and a refused draft), for htmx; the settings page around it otherwise. */
  async function block(request: Request, view: View, draft?: BroadcastDraft, status = 200) {
    if (isHtmx(request)) return render(broadcastBlock(panel, view, draft), status);
    return settingsPage(panel, view, { broadcast: await broadcastBlock(panel, view, draft), status });
  }

  async function requireBroadcast(idText: string) {
    const id = idParam(idText);
    const broadcast = id === null ? null : await shop.broadcasts.byId(id);
    if (!broadcast) throw new Refusal(404, NOT_FOUND);
    return broadcast;
  }

  return routes
    .get("/broadcasts", ({ request, panel: p }) => block(request, p.view))
    .post("/broadcasts/preview", async ({ request, body, panel: p }) => {
      const text = textOf(body);
      const problem = broadcastTextProblem(text);
      if (problem) return block(request, p.view, { text, error: problem }, 422);
      const preview = BroadcastPreview({ view: p.view, audience: await shop.broadcasts.audience(), text: text.trim() });
      if (isHtmx(request)) return render(preview);
      return settingsPage(panel, p.view, { broadcast: await preview });
    })
    .post("/broadcasts", async ({ request, body, panel: p }) => {
      const text = textOf(body);
      if (field(body, "action") === "edit") return block(request, p.view, { text });
      try {
        const broadcast = await shop.broadcasts.create({ text, createdBy: `panel:${p.account.login}` });
        log.info("broadcast started from the panel", { broadcastId: broadcast.id, login: p.account.login });
      } catch (error) {
        if (error instanceof ShopError && error.code === "invalid")
          return block(request, p.view, { text, error: error.message }, 422);
        throw error;
      }
      if (!isHtmx(request)) return redirect(request, `${base}/settings#broadcast`);
      return block(request, p.view);
    })
    .get("/broadcasts/:id", async ({ request, params, panel: p }) => {
      const broadcast = await requireBroadcast(params.id);
      if (!isHtmx(request)) return redirect(request, `${base}/settings#broadcast`);
      return render(BroadcastProgress({ view: p.view, broadcast }));
    })
    .post("/broadcasts/:id/cancel", async ({ request, params, panel: p }) => {
      const { id } = await requireBroadcast(params.id);
      const broadcast = await shop.broadcasts.cancel(id);
      log.info("broadcast stopped from the panel", { broadcastId: id, login: p.account.login });
      if (!isHtmx(request)) return redirect(request, `${base}/settings#broadcast`);
      return render(BroadcastProgress({ view: p.view, broadcast }));
    });
}
