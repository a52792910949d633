import type { SigningKeyInfo } from "../src/shop/licence/signing.ts";
import { when } from "./format.ts";

/**
 * The product page's API section (docs/panel.md#products, docs/licence-api.md#the-public-key): the auth API's address,
 * the keys that sign its answers (id, base64, PEM) and the command lines of the three loader kits with this product's
 * address and key filled in, each with a copy button. Everything shown comes from the product's name and the public
 * keys, and is escaped.
 */
export type LicenceApiProps = {
  /** The auth API's full address for this product, percent-encoded. */
  url: string;
  /** The keys that sign answers now, newest first (what the loader pins). */
  keys: Pick<SigningKeyInfo, "keyId" | "publicKey" | "pem" | "createdAt">[];
};

/** One argument for a POSIX shell, in single quotes (a product name may hold a quote). */
export function shellArgument(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The kits' common command line (docs/licence-api.md#loader-kits), with placeholders for what only the loader knows. */
export function kitCommands(url: string, publicKey: string): { kit: string; id: string; command: string }[] {
  const args = `${shellArgument(url)} 'КЛЮЧ' 'HWID' ${shellArgument(publicKey)}`;
  return [
    {
      kit: "C (libcurl + libsodium + cJSON)",
      id: "kit-c",
      command: `make -C clients/c && clients/c/loader_auth ${args}`,
    },
    {
      kit: "Python (PyNaCl или cryptography)",
      id: "kit-python",
      command: `python3 clients/python/loader_auth.py ${args}`,
    },
    {
      kit: "TypeScript (Bun, Node 20+)",
      id: "kit-typescript",
      command: `bun clients/typescript/loader-auth.ts ${args}`,
    },
  ];
}

function Copyable(props: { id: string; text: string; block?: boolean }) {
  return (
    <div class="copy-row">
      {props.block ? (
        <pre id={props.id} class="mono" safe>
          {props.text}
        </pre>
      ) : (
        <code id={props.id} class="mono" safe>
          {props.text}
        </code>
      )}
      <button type="button" class="small" data-copy={`#${props.id}`}>
        Копировать
      </button>
    </div>
  );
}

export function LicenceApiSection(props: LicenceApiProps) {
  const [newest, ...older] = props.keys;
  return (
    <section id="licence-api" class="card stack">
      <h2>API авторизации</h2>
      <Copyable id="api-url" text={props.url} />
      <p class="hint">
        Лоадер отправляет <code>key</code>, <code>uuid</code> (HWID) и новый случайный <code>nonce</code> при каждом
        запросе — JSON, форма или GET-параметры. Ответ подписан ключом магазина (заголовок <code>X-Signature</code>) и
        повторяет <code>nonce</code>, ключ, HWID и продукт: поддельный сервер не сможет «разрешить» запуск.
      </p>
      {newest ? (
        <div class="stack">
          <h3>Открытый ключ подписи</h3>
          <p class="hint">
            Встройте его в лоадер константой при сборке и не загружайте с сервера во время работы. Он не секретный: им
            можно только проверить подпись, но не подписать.
          </p>
          <p>
            ID ключа: <code safe>{newest.keyId}</code> · создан <span safe>{when(newest.createdAt)}</span>
          </p>
          <p class="hint">Base64 (32 байта):</p>
          <Copyable id="public-key" text={newest.publicKey} />
          <p class="hint">PEM:</p>
          <Copyable id="public-key-pem" text={newest.pem.trimEnd()} block />
          {older.length > 0 ? (
            <div class="notice notice-info stack">
              <p>
                Идёт смена ключа: ответы подписаны и этим ключом, и{" "}
                <span safe>{older.length === 1 ? "прежним" : `${older.length} прежними`}</span>, поэтому уже выпущенные
                лоадеры работают. Когда лоадеры с прежним ключом выйдут из употребления, выведите его из работы:
              </p>
              {older.map((k) => (
                <Copyable id={`retire-${k.keyId}`} text={`bun run cli api:retire-key ${k.keyId}`} />
              ))}
            </div>
          ) : (
            ""
          )}
          <h3>Проверка лицензии: готовые наборы</h3>
          <p class="hint">
            Файлы из папки <code>clients/</code> исходников магазина. Код выхода: 0 — лицензия действует, 1 — магазин
            отказал, 2 — ответу нельзя верить (подпись, чужой ответ, сеть). Подставьте ключ и HWID.
          </p>
          {kitCommands(props.url, newest.publicKey).map((k) => (
            <div class="stack">
              <p safe>{k.kit}</p>
              <Copyable id={k.id} text={k.command} block />
            </div>
          ))}
        </div>
      ) : (
        <p class="notice notice-error">
          Ключ подписи не найден: ответы API уходят без подписи. Выполните <code>bun run cli migrate</code>.
        </p>
      )}
    </section>
  );
}
