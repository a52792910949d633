import { BroadcastBlock, type BroadcastDraft } from "../../templates/broadcasts.tsx";
import {
  AnypaySection,
  BotStatusLine,
  BotSwitches,
  NumbersSection,
  SettingsPage,
  type SettingsSection,
  StarsSection,
  TokenSection,
} from "../../templates/settings.tsx";
import type { View } from "../../templates/view.ts";
import { type BotReport, tokenHint } from "../shop/bot/status.ts";
import { ShopError } from "../shop/errors.ts";
import {
  BOT_TOKEN_PATTERN,
  NUMERIC_SETTINGS,
  numericSettingProblem,
  type SettingsPatch,
} from "../shop/settings/settings.ts";
import type { PanelContext } from "./context.ts";
import type { PanelRoutes } from "./guard.ts";
import { field, isHtmx, redirect, render } from "./respond.ts";

const SECTIONS = {
  bot: BotSwitches,
  token: TokenSection,
  anypay: AnypaySection,
  stars: StarsSection,
  numbers: NumbersSection,
} as const;

/** "on"/"off" from a toggle button; anything else is not a switch position. */
function onOff(text: string): boolean | null {
  return text === "on" ? true : text === "off" ? false : null;
}

/** A switch post that names no switch position: only a stale page or a hand-made request sends one. */
const UNKNOWN_SWITCH = "Не удалось понять, что переключить. Обновите страницу и нажмите переключатель ещё раз.";

/** How long saving a token waits for this process's bot to hear from Telegram about it. */
const TOKEN_VERDICT_WAIT_MS = 5_000;

/** What the owner is told once the bot has tried the new token; null when it has not (yet). */
function tokenOutcome(verdict: BotReport | null): { saved: string } | { error: string } {
  if (!verdict) return { saved: "Токен сохранён. Бот проверяет его в Telegram — состояние показано ниже." };
  switch (verdict.state) {
    case "invalid_token":
      return {
        error: `Токен сохранён, но Telegram его отклонил${verdict.error ? ` (${verdict.error})` : ""}. Проверьте токен в @BotFather: пока он не исправлен, бот никому не отвечает.`,
      };
    case "unreachable":
      return { saved: "Токен сохранён, но Telegram сейчас недоступен: бот проверит токен снова сам." };
    default:
      return {
        saved: `Токен сохранён и применён: Telegram принял его${verdict.username ? `, бот @${verdict.username}` : ""}.`,
      };
  }
}

/** The broadcast card as it stands: the form (with a refused draft), the latest broadcasts. */
export async function broadcastBlock(panel: PanelContext, view: View, draft?: BroadcastDraft): Promise<string> {
  const [audience, recent] = await Promise.all([panel.shop.broadcasts.audience(), panel.shop.broadcasts.recent(5)]);
  return await BroadcastBlock({ view, audience, recent, draft });
}

/** The whole tab; `section` says which card shows `errors`/`saved`, `broadcast` replaces the broadcast card. */
export async function settingsPage(
  panel: PanelContext,
  view: View,
  options: {
    section?: SettingsSection;
    errors?: Record<string, string> | undefined;
    saved?: string | undefined;
    typed?: Record<string, string> | undefined;
    broadcast?: JSX.Element;
    status?: number;
  } = {},
): Promise<Response> {
  const [settings, bot, broadcast] = await Promise.all([
    panel.shop.settings.get(),
    panel.shop.botStatus.current(),
    options.broadcast ?? broadcastBlock(panel, view),
  ]);
  const page = SettingsPage({ view, settings, bot, ...options, broadcast });
  return render(page, options.status ?? 200);
}

/**
 * Основные настройки: bot on/off, maintenance, the bot token (write-only), AnyPay credentials (secret write-only),
 * test payments. Every change goes through shop.settings.update, which announces it to every running process.
 */
export function settingsRoutes(routes: PanelRoutes, panel: PanelContext) {
  const { shop, base } = panel;

  /** The changed section for htmx; for a plain form, back to the page (303) or the page with the errors. */
  async function answer(
    request: Request,
    view: View,
    section: SettingsSection,
    result: { status?: number; errors?: Record<string, string>; saved?: string; typed?: Record<string, string> },
  ): Promise<Response> {
    const status = result.status ?? 200;
    if (!isHtmx(request)) {
      if (status < 400) return redirect(request, `${base}/settings`);
      const { errors, saved, typed } = result;
      return settingsPage(panel, view, { section, errors, saved, typed, status });
    }
    const [settings, bot] = await Promise.all([shop.settings.get(), shop.botStatus.current()]);
    const { errors, saved, typed } = result;
    return render(SECTIONS[section]({ view, settings, bot, errors, saved, typed }), status);
  }

  /** Applies a patch; a refusal from the domain becomes an error next to its field (the answer), else null. */
  async function apply(request: Request, view: View, section: SettingsSection, patch: SettingsPatch) {
    try {
      await shop.settings.update(patch);
      return null;
    } catch (error) {
      if (error instanceof ShopError && error.code === "invalid") {
        return answer(request, view, section, { status: 422, errors: { [error.field ?? "_"]: error.message } });
      }
      throw error;
    }
  }

  async function update(request: Request, view: View, section: SettingsSection, patch: SettingsPatch, saved: string) {
    return (await apply(request, view, section, patch)) ?? answer(request, view, section, { saved });
  }

  return (
    routes
      .get("/settings", ({ panel: p }) => settingsPage(panel, p.view))
      // The bot's state line refreshes itself through this while it is about to change (starting, switching).
      .get("/settings/bot-status", async ({ panel: p }) =>
        render(BotStatusLine({ view: p.view, bot: await shop.botStatus.current() })),
      )
      .post("/settings/bot", ({ request, body, panel: p }) => {
        const enabled = onOff(field(body, "botEnabled"));
        const maintenance = onOff(field(body, "maintenance"));
        if (enabled === null && maintenance === null) {
          return answer(request, p.view, "bot", { status: 422, errors: { botEnabled: UNKNOWN_SWITCH } });
        }
        const patch: SettingsPatch = {};
        if (enabled !== null) patch.botEnabled = enabled;
        if (maintenance !== null) patch.maintenance = maintenance;
        const saved =
          enabled !== null
            ? enabled
              ? "Бот включён."
              : "Бот выключен."
            : maintenance
              ? "Технические работы начаты."
              : "Технические работы закончены.";
        return update(request, p.view, "bot", patch, saved);
      })
      .post("/settings/token", async ({ request, body, panel: p }) => {
        if (field(body, "action") === "clear") {
          return update(request, p.view, "token", { botToken: null }, "Токен удалён.");
        }
        const token = field(body, "botToken").trim();
        if (token === "") {
          return answer(request, p.view, "token", { status: 422, errors: { botToken: "Вставьте токен" } });
        }
        if (!BOT_TOKEN_PATTERN.test(token)) {
          return answer(request, p.view, "token", {
            status: 422,
            errors: { botToken: "Токен бота выглядит как 123456789:AA… (его выдаёт @BotFather)" },
          });
        }
        const refused = await apply(request, p.view, "token", { botToken: token });
        if (refused) return refused;
        // The bot of this process tries the token at once (getMe): say what Telegram made of it, not just "saved".
        const outcome = tokenOutcome(await shop.botStatus.verdictFor(tokenHint(token), TOKEN_VERDICT_WAIT_MS));
        return "error" in outcome
          ? answer(request, p.view, "token", { status: 422, errors: { botToken: outcome.error } })
          : answer(request, p.view, "token", { saved: outcome.saved });
      })
      .post("/settings/anypay", ({ request, body, panel: p }) => {
        const merchantId = field(body, "anypayMerchantId").trim();
        const secret = field(body, "anypaySecretKey").trim();
        const errors: Record<string, string> = {};
        if (merchantId !== "" && !/^\d{1,20}$/.test(merchantId)) errors.anypayMerchantId = "ID магазина — число";
        if (secret.length > 200) errors.anypaySecretKey = "Секретный ключ — до 200 символов";
        if (Object.keys(errors).length > 0) return answer(request, p.view, "anypay", { status: 422, errors });
        // An empty secret field means "keep the one that is set": the page never shows it, so it cannot resend it.
        const patch: SettingsPatch = { anypayMerchantId: merchantId === "" ? null : merchantId };
        if (secret !== "") patch.anypaySecretKey = secret;
        return update(request, p.view, "anypay", patch, "Настройки AnyPay сохранены.");
      })
      .post("/settings/test-payments", ({ request, body, panel: p }) => {
        const on = onOff(field(body, "testPayments"));
        if (on === null) {
          return answer(request, p.view, "anypay", { status: 422, errors: { testPayments: UNKNOWN_SWITCH } });
        }
        const saved = on ? "Тестовые платежи включены." : "Тестовые платежи выключены.";
        return update(request, p.view, "anypay", { testPayments: on }, saved);
      })
      .post("/settings/stars", ({ request, body, panel: p }) => {
        const on = onOff(field(body, "starsEnabled"));
        if (on === null) {
          return answer(request, p.view, "stars", { status: 422, errors: { starsEnabled: UNKNOWN_SWITCH } });
        }
        const saved = on
          ? "Оплата звёздами включена: кнопка появится у сроков с ценой в звёздах."
          : "Оплата звёздами выключена.";
        return update(request, p.view, "stars", { starsEnabled: on }, saved);
      })
      .post("/settings/numbers", ({ request, body, panel: p }) => {
        const patch: Record<string, number> = {};
        const errors: Record<string, string> = {};
        const typed: Record<string, string> = {};
        for (const setting of NUMERIC_SETTINGS) {
          const text = field(body, setting.name).trim();
          typed[setting.name] = text;
          // Left empty (or absent: a page opened before this setting existed): the value stays as it is.
          if (text === "") continue;
          const value = /^\d{1,9}$/.test(text) ? Number(text) : Number.NaN;
          const problem = numericSettingProblem(setting, value);
          if (problem) errors[setting.name] = problem;
          else patch[setting.field] = value;
        }
        if (Object.keys(errors).length > 0) return answer(request, p.view, "numbers", { status: 422, errors, typed });
        return update(request, p.view, "numbers", patch as SettingsPatch, "Сохранено.");
      })
  );
}
