import { CsrfField, DISABLE_WHILE_SENDING, Field, Notice, postTo } from "./components.tsx";
import { AuthLayout, Layout } from "./layout.tsx";
import { type FieldErrors, href, type View } from "./view.ts";

export type LoginFormProps = {
  view: View;
  login?: string;
  next?: string;
  errors?: FieldErrors;
  /** A refusal that is about the whole attempt (wrong password, too many tries, stale page). */
  message?: string;
};

/** The login form; posted by htmx it is swapped in place with the error, a plain post gets the whole page. */
export function LoginForm(props: LoginFormProps) {
  const { view } = props;
  const errors = props.errors ?? {};
  return (
    <form id="login-form" class="stack" {...postTo(href(view, "/login"), "this")} {...DISABLE_WHILE_SENDING}>
      <h1>Вход в панель</h1>
      {props.message ? <Notice kind="error">{<span safe>{props.message}</span>}</Notice> : ""}
      <CsrfField view={view} />
      <input type="hidden" name="next" value={props.next ?? ""} />
      <Field label="Логин" name="login" error={errors.login}>
        <input
          id="f-login"
          name="login"
          autocomplete="username"
          required
          maxlength="64"
          value={props.login ?? ""}
          autofocus
        />
      </Field>
      <Field label="Пароль" name="password" error={errors.password}>
        <input
          id="f-password"
          name="password"
          type="password"
          autocomplete="current-password"
          required
          maxlength="1024"
        />
      </Field>
      <button type="submit" class="primary wide">
        Войти
      </button>
      <p class="hint">
        Логин и пароль печатает установка (setup.sh) или команда <code>bun run cli admin:reset</code>.
      </p>
    </form>
  );
}

export function LoginPage(props: LoginFormProps) {
  return (
    <AuthLayout view={props.view} title="Вход">
      <LoginForm {...props} />
    </AuthLayout>
  );
}

export type PasswordFormProps = { view: View; errors?: FieldErrors; done?: boolean };

export function PasswordForm(props: PasswordFormProps) {
  const { view } = props;
  const errors = props.errors ?? {};
  return (
    <form
      id="password-form"
      class="card stack narrow"
      {...postTo(href(view, "/account/password"), "this")}
      {...DISABLE_WHILE_SENDING}
    >
      <h2>Смена пароля</h2>
      {props.done ? <Notice kind="ok">Пароль изменён. Другие открытые сессии завершены.</Notice> : ""}
      <CsrfField view={view} />
      <Field label="Текущий пароль" name="current" error={errors.current}>
        <input
          id="f-current"
          name="current"
          type="password"
          autocomplete="current-password"
          required
          maxlength="1024"
        />
      </Field>
      <Field label="Новый пароль" name="next" error={errors.next} hint="Не короче 10 символов.">
        <input
          id="f-next"
          name="next"
          type="password"
          autocomplete="new-password"
          required
          minlength="10"
          maxlength="200"
        />
      </Field>
      <Field label="Новый пароль ещё раз" name="repeat" error={errors.repeat}>
        <input
          id="f-repeat"
          name="repeat"
          type="password"
          autocomplete="new-password"
          required
          minlength="10"
          maxlength="200"
        />
      </Field>
      <button type="submit" class="primary">
        Сменить пароль
      </button>
    </form>
  );
}

export function AccountPage(props: PasswordFormProps) {
  return (
    <Layout view={props.view} title="Учётная запись" tab="account">
      <h1>Учётная запись</h1>
      <p>
        Вы вошли как <strong safe>{props.view.login}</strong>.
      </p>
      <PasswordForm {...props} />
    </Layout>
  );
}
