import { UserEvents, UserOrders, UserPage, UsersList, UsersPage } from "../../templates/users.tsx";
import type { View } from "../../templates/view.ts";
import { notFound } from "../shop/errors.ts";
import type { PageRequest } from "../shop/lists.ts";
import { isUserSort } from "../shop/users/lists.ts";
import type { PanelContext } from "./context.ts";
import type { PanelRoutes } from "./guard.ts";
import { idParam, isPartial, queryText, render } from "./respond.ts";

function pageRequest(query: Record<string, unknown>): PageRequest {
  return { after: queryText(query, "after"), before: queryText(query, "before") };
}

/** Пользователи: every bot user (search, sort, pages), and one user's statistics, keys, orders and log. */
export function usersRoutes(routes: PanelRoutes, panel: PanelContext) {
  const { shop } = panel;

  async function userPage(
    view: View,
    id: number | null,
    pages: { events?: PageRequest; orders?: PageRequest },
  ): Promise<Response> {
    const user = id === null ? null : await shop.users.byId(id);
    if (!user) throw notFound("Такого пользователя нет.");
    const [stats, keys, orders, events, isAdmin] = await Promise.all([
      shop.users.stats(user.telegramId),
      shop.users.keys(user.telegramId),
      shop.orders.list({ userId: user.telegramId, limit: 20, ...pages.orders }),
      shop.users.events(user.telegramId, { limit: 30, ...pages.events }),
      shop.admins.isAdmin(user.telegramId),
    ]);
    return render(UserPage({ view, user, stats, keys, orders, events, isAdmin }));
  }

  return routes
    .get("/users", async ({ request, query, panel: p }) => {
      const sortText = queryText(query, "sort");
      const q = {
        q: (queryText(query, "q") ?? "").trim().slice(0, 128),
        sort: isUserSort(sortText) ? sortText : "last_seen",
      } as const;
      const page = await shop.users.list({ ...q, ...pageRequest(query) });
      const props = { view: p.view, query: q, page };
      return render(isPartial(request) ? UsersList(props) : UsersPage(props));
    })
    .get("/users/:id", ({ params, panel: p }) => userPage(p.view, idParam(params.id), {}))
    .get("/users/:id/events", async ({ request, params, query, panel: p }) => {
      const id = idParam(params.id);
      if (!isPartial(request) || id === null) return userPage(p.view, id, { events: pageRequest(query) });
      const page = await shop.users.events(id, { limit: 30, ...pageRequest(query) });
      return render(UserEvents({ view: p.view, userId: id, page }));
    })
    .get("/users/:id/orders", async ({ request, params, query, panel: p }) => {
      const id = idParam(params.id);
      if (!isPartial(request) || id === null) return userPage(p.view, id, { orders: pageRequest(query) });
      const page = await shop.orders.list({ userId: id, limit: 20, ...pageRequest(query) });
      return render(UserOrders({ view: p.view, userId: id, page }));
    });
}
