import { escapeHtml } from "@kitajs/html";
import { DURATIONS } from "../src/lib/durations.ts";
import { type KeyStringFault, MAX_KEY_LENGTH } from "../src/lib/keys.ts";
import { MAX_COMPENSATION_DAYS, type ImportResult as ShopImportResult } from "../src/shop/keys/keys.ts";
import type { Product } from "../src/shop/products/products.ts";
import { CsrfField, DISABLE_WHILE_SENDING, Field, Notice, postTo } from "./components.tsx";
import { count, days, plural } from "./format.ts";
import { type FieldErrors, href, type View } from "./view.ts";

/**
 * How keys come into a product, on its page: generated, imported from a text file (with its progress), or one
 * sold by hand (issued). The lists of its keys are keys.tsx.
 */

/** A .txt of keys bigger than this is refused before reading it (100 000 keys of 128 characters fit). */
export const MAX_IMPORT_FILE_BYTES = 16 * 1024 * 1024;

type ProductProps = { view: View; product: Product };

export type GenerateResult = { days: number; keys: string[] };

export function GenerateForm(
  props: ProductProps & { errors?: FieldErrors; values?: { days?: string; count?: string }; result?: GenerateResult },
) {
  const { view, product } = props;
  const e = props.errors ?? {};
  const url = href(view, `/products/${product.id}/keys/generate`);
  return (
    <form
      id="generate"
      class="card stack"
      {...postTo(url, "this")}
      {...DISABLE_WHILE_SENDING}
      hx-indicator="find .progress"
    >
      <h2>Сгенерировать ключи</h2>
      <CsrfField view={view} />
      <div class="row">
        <Field label="Срок" name="gen-days" error={e.days}>
          <DaysSelect id="f-gen-days" selected={props.values?.days} />
        </Field>
        <Field label="Количество" name="gen-count" error={e.count}>
          <input
            id="f-gen-count"
            name="count"
            type="number"
            min="1"
            max="10000"
            required
            value={props.values?.count ?? "10"}
          />
        </Field>
      </div>
      <button type="submit" class="primary">
        Сгенерировать
      </button>
      <p class="progress htmx-indicator">Генерация…</p>
      {props.result ? (
        <div class="result">
          <Notice kind="ok">
            {escapeHtml(
              `Создано ${count(props.result.keys.length)} ${plural(props.result.keys.length, ["ключ", "ключа", "ключей"])} на ${days(props.result.days)}.`,
            )}
          </Notice>
          <label for="generated-keys" class="hint">
            Новые ключи (можно скопировать):
          </label>
          <textarea id="generated-keys" class="mono" rows="6" readonly safe>
            {props.result.keys.join("\n")}
          </textarea>
        </div>
      ) : (
        ""
      )}
    </form>
  );
}

export type IssueResult = { id: number; key: string; days: number; to: number | null };

/**
 * «Выдать ключ»: sells one key by hand (a gift, a support case, or to try the API), for a duration, optionally to a
 * Telegram user, with a note — the panel's twin of `keys:issue`. The key is shown to be copied and passed on.
 */
export function IssueForm(
  props: ProductProps & {
    errors?: FieldErrors;
    values?: { days?: string; to?: string; note?: string };
    result?: IssueResult;
  },
) {
  const { view, product } = props;
  const e = props.errors ?? {};
  const url = href(view, `/products/${product.id}/keys/issue`);
  const r = props.result;
  return (
    <form id="issue" class="card stack" {...postTo(url, "this")} {...DISABLE_WHILE_SENDING}>
      <h2>Выдать ключ</h2>
      <p class="hint">Продаёт один свободный ключ без оплаты: подарок, замена по поддержке или проверка API.</p>
      <CsrfField view={view} />
      <div class="row">
        <Field label="Срок" name="issue-days" error={e.days}>
          <DaysSelect id="f-issue-days" selected={props.values?.days} />
        </Field>
        <Field label="Telegram ID покупателя" name="issue-to" error={e.to} hint="Необязательно.">
          <input
            id="f-issue-to"
            name="to"
            inputmode="numeric"
            maxlength="16"
            autocomplete="off"
            value={props.values?.to ?? ""}
          />
        </Field>
      </div>
      <Field label="Заметка" name="issue-note" error={e.note} hint="Необязательно: например, «замена по тикету 42».">
        <input id="f-issue-note" name="note" maxlength="500" value={props.values?.note ?? ""} />
      </Field>
      <button type="submit" class="primary">
        Выдать ключ
      </button>
      {r ? (
        <div class="result">
          <Notice kind="ok">
            {escapeHtml(
              `Ключ выдан на ${days(r.days)}${r.to !== null ? ` покупателю ${r.to}` : ""}: он в списке проданных. Бот его не отправляет — передайте ключ сами.`,
            )}
          </Notice>
          <div class="copy-row">
            <code id="issued-key" class="mono" safe>
              {r.key}
            </code>
            <button type="button" class="small" data-copy="#issued-key">
              Копировать
            </button>
            <a class="sub" href={href(view, `/keys/${r.id}`)}>
              страница ключа
            </a>
          </div>
        </div>
      ) : (
        ""
      )}
    </form>
  );
}

export type CompensateResult = { days: number; keys: number };

/**
 * «Компенсировать»: days added to every activated, unexpired, unbanned key of the product, for a time it could not be
 * used (an update, a detection). One transaction; each key gets a line on its timeline.
 */
export function CompensateForm(
  props: ProductProps & { errors?: FieldErrors; values?: { days?: string }; result?: CompensateResult },
) {
  const { view, product } = props;
  const e = props.errors ?? {};
  const url = href(view, `/products/${product.id}/compensate`);
  const r = props.result;
  return (
    <form
      id="compensate"
      class="card stack"
      {...postTo(url, "this")}
      {...DISABLE_WHILE_SENDING}
      hx-confirm="Добавить дни всем активным ключам этого продукта? Отменить это нельзя."
    >
      <h2>Компенсировать</h2>
      <p class="hint">
        Продукт не работал (обновление, детект)? Добавьте дни всем активированным, не истёкшим и не забаненным ключам.
        Неактивированные ничего не теряют: их срок ещё не начался.
      </p>
      <CsrfField view={view} />
      <Field label="Дней" name="compensate-days" error={e.days} hint={`От 1 до ${MAX_COMPENSATION_DAYS}.`}>
        <input
          id="f-compensate-days"
          name="days"
          type="number"
          inputmode="numeric"
          min="1"
          max={String(MAX_COMPENSATION_DAYS)}
          required
          class="tiny"
          value={props.values?.days ?? "1"}
        />
      </Field>
      <button type="submit" class="primary">
        Компенсировать
      </button>
      {r ? (
        <Notice kind="ok">
          {escapeHtml(
            r.keys === 0
              ? "Активных ключей нет: компенсировать некому."
              : `Компенсировано ключей: ${count(r.keys)} (каждому +${days(r.days)}).`,
          )}
        </Notice>
      ) : (
        ""
      )}
    </form>
  );
}

export type ImportResult = { days: number } & ShopImportResult;

/** Why a line of an import is not a key, as the owner reads it. */
const KEY_FAULTS: Record<KeyStringFault, string> = {
  empty: "пустой ключ",
  too_long: `ключ длиннее ${MAX_KEY_LENGTH} символов`,
  not_printable: "в ключе пробел или непечатаемый символ (допустимы латинские буквы, цифры и знаки ASCII без пробелов)",
};

export function ImportForm(
  props: ProductProps & { errors?: FieldErrors; values?: { days?: string; keys?: string }; result?: ImportResult },
) {
  const { view, product } = props;
  const e = props.errors ?? {};
  const url = href(view, `/products/${product.id}/keys/import`);
  const r = props.result;
  return (
    <form
      id="import"
      class="card stack"
      {...postTo(url, "this")}
      enctype="multipart/form-data"
      hx-encoding="multipart/form-data"
      {...DISABLE_WHILE_SENDING}
      hx-indicator="find .progress"
    >
      <h2>Импорт ключей</h2>
      <CsrfField view={view} />
      <Field label="Срок" name="imp-days" error={e.days}>
        <DaysSelect id="f-imp-days" selected={props.values?.days} />
      </Field>
      <Field label="Ключи, по одному в строке" name="keys" error={e.keys}>
        <textarea id="f-keys" name="keys" rows="5" class="mono" spellcheck="false" placeholder={"KEY-1\nKEY-2"} safe>
          {props.values?.keys ?? ""}
        </textarea>
      </Field>
      <Field label="…или файл .txt" name="file" error={e.file}>
        <input
          id="f-file"
          name="file"
          type="file"
          accept=".txt,text/plain"
          data-max-bytes={String(MAX_IMPORT_FILE_BYTES)}
          data-too-big="Файл больше 16 МБ: разбейте его на части"
        />
      </Field>
      <button type="submit" class="primary">
        Импортировать
      </button>
      <p class="progress htmx-indicator">Импорт…</p>
      {r ? (
        <div class="result">
          <Notice kind={r.imported > 0 ? "ok" : "warn"}>
            {escapeHtml(
              `Импортировано: ${count(r.imported)}, дубликатов: ${count(r.duplicates)}${r.invalid.length ? `, с ошибкой: ${count(r.invalid.length)}` : ""} (срок ${days(r.days)}).`,
            )}
          </Notice>
          {r.invalid.length > 0 ? (
            <ul class="problems">
              {r.invalid.slice(0, 20).map((i) => (
                <li safe>{`строка ${i.line}: ${KEY_FAULTS[i.fault]}`}</li>
              ))}
              {r.invalid.length > 20 ? <li safe>{`…и ещё ${count(r.invalid.length - 20)}`}</li> : ""}
            </ul>
          ) : (
            ""
          )}
        </div>
      ) : (
        ""
      )}
    </form>
  );
}

/**
 * A big import on its way: the real count so far, polled until the import is done, when the import form with its
 * result replaces this block.
 */
export function ImportProgress(
  props: ProductProps & { job: { id: string; days: number; done: number; total: number } },
) {
  const { view, product, job } = props;
  const url = href(view, `/products/${product.id}/keys/import/${job.id}`);
  return (
    <section
      id="import"
      class="card stack"
      hx-get={url}
      hx-trigger="load delay:400ms"
      hx-target="this"
      hx-swap="outerHTML"
      aria-busy="true"
    >
      <h2>Импорт ключей</h2>
      <progress class="import-progress" max={String(Math.max(job.total, 1))} value={String(job.done)} />
      <p role="status" safe>
        {`Импорт: ${count(job.done)} из ${count(job.total)} ${plural(job.total, ["ключа", "ключей", "ключей"])} (срок ${days(job.days)})…`}
      </p>
      <p class="hint">Импорт продолжится, даже если уйти со страницы.</p>
    </section>
  );
}

function DaysSelect(props: { id: string; selected?: string | undefined }) {
  return (
    <select id={props.id} name="days" required>
      {DURATIONS.map((d) => (
        <option value={String(d)} selected={props.selected === String(d)}>
          {escapeHtml(days(d))}
        </option>
      ))}
    </select>
  );
}
