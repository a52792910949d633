-- Panel sessions ended by logout. A session's token stays signed until it expires (7 days at most), so its id is
-- remembered here until then: in PostgreSQL, not in Redis, because a Redis flush or outage must never bring a
-- logged-out (perhaps stolen) session back to life. The session check reads it in the same query as the account.
create table panel_revoked_sessions (
  sid text primary key check (length(sid) between 16 and 64),
  account_id bigint not null references panel_accounts (id) on delete cascade,
  revoked_at timestamptz not null default now(),
  -- When the token could no longer be used anyway: rows past it are deleted by later logouts.
  expires_at timestamptz not null
);
create index panel_revoked_sessions_expiry on panel_revoked_sessions (expires_at);
