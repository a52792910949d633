-- Broadcasts that survive a killed sender, and the bot's runtime state kept in Postgres (which the shop cannot run
-- without) rather than in Redis (which it can).

-- A recipient whose message may or may not have reached Telegram: its sender died between recording the attempt and
-- recording the answer. Telegram has no idempotency key, so such a recipient is never sent the message again.
alter type recipient_status add value if not exists 'unconfirmed';

alter table broadcast_recipients
  -- The sender holding this recipient. Its hold lasts until next_attempt_at, which it renews while it is alive, so a
  -- killed sender's untried recipients come back within seconds.
  add column claimed_by text,
  -- Set right before the request to Telegram leaves, cleared when its answer is recorded.
  add column attempt_started_at timestamptz;

-- Recipients an older sender left mid-attempt (it counted the attempt and cleared the error right before sending):
-- from now on they are recognised as interrupted and resolved as unconfirmed, not sent again.
update broadcast_recipients set attempt_started_at = now()
where status = 'pending' and attempts > 0 and last_error is null;

-- Where the bot's long polling stands, per bot: the next update id to ask for, and ids above it already answered
-- (left by a token revoked mid-batch). Whoever polls next — after a token change, or on another instance — starts
-- exactly there, whether Redis is up or not.
create table bot_polling (
  bot_id bigint primary key,
  next_update_id bigint not null,
  answered bigint[] not null default '{}',
  updated_at timestamptz not null default now()
);

-- What each running bot runtime reports about itself (polling, standby, invalid token…), renewed while it runs; a
-- report past fresh_until belongs to a process that is gone. The panel and healthz read it.
create table bot_instances (
  instance_id text primary key,
  state text not null,
  username text,
  error text,
  -- Which token the state is about: a short hash, never the token itself.
  token_hint text,
  reported_at timestamptz not null default now(),
  fresh_until timestamptz not null
);
