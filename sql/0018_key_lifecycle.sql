-- A key's whole life on one page (docs/panel.md#the-key-page), and the alerts when a key is shared.
--
-- What the shop already keeps (the key row, its order, payments, delivery) is read as it is; what happens to a key
-- outside a purchase is recorded here from now on: key_events (one row per thing done to a key, with who did it),
-- key_mismatches (HWID mismatches grouped per foreign PC, counted in memory by each app process and written in
-- batches) and sharing_alerts (one per key per period, with a copy per admin that follows the alert's state).

-- Who did something, as the timeline names them: a panel account, an admin in the bot, the buyer in the bot, the
-- operator's CLI, the shop itself (a job, a migration), or the loader (the licence API).
create domain shop_actor as text
  check (value ~ '^(panel:[A-Za-z0-9._-]{1,64}|bot:[0-9]{1,20}|buyer:[0-9]{1,20}|cli|system|loader)$');

-- Where a key came from and who added it; null for keys added before the shop recorded it.
alter table keys
  add column origin text check (origin in ('generated', 'imported')),
  add column added_by shop_actor;

create table key_events (
  id bigint generated always as identity primary key,
  key_id bigint not null references keys (id) on delete cascade,
  at timestamptz not null default now(),
  -- The kinds and their details are the shop's (src/shop/keys/events.ts): a new kind needs no migration.
  kind text not null check (kind ~ '^[a-z][a-z_]{0,39}$'),
  -- Null only for what was backfilled below: who did it then was not recorded.
  actor shop_actor,
  details jsonb not null default '{}' check (jsonb_typeof(details) = 'object')
);
create index key_events_key on key_events (key_id, at desc);

-- HWID mismatches per key and foreign PC: how many, first and last time, the first few addresses they came from.
-- Bounded: at most 10 addresses per PC, and the writer stops adding PCs to a key past a few hundred.
create table key_mismatches (
  key_id bigint not null references keys (id) on delete cascade,
  uuid text not null check (char_length(uuid) between 1 and 128),
  count bigint not null check (count > 0),
  first_at timestamptz not null,
  last_at timestamptz not null,
  ips text[] not null default '{}' check (cardinality(ips) <= 10),
  primary key (key_id, uuid)
);

-- A key met too many foreign PCs in too short a time: raised at most once per key per period (the raiser holds an
-- advisory lock on the key while it looks for an earlier alert), resolved once, by the first admin to press a button.
create table sharing_alerts (
  id bigint generated always as identity primary key,
  key_id bigint not null references keys (id) on delete cascade,
  raised_at timestamptz not null default now(),
  -- What the alert saw: distinct foreign PCs and their mismatches within `hours`.
  uuids integer not null check (uuids > 0),
  mismatches bigint not null check (mismatches > 0),
  hours integer not null check (hours > 0),
  resolution text check (resolution in ('ban', 'reset', 'ignore')),
  resolved_by shop_actor,
  resolved_at timestamptz,
  -- Bumped whenever what the admins' copies must say changes: a copy showing an older version is edited.
  version integer not null default 1,
  check ((resolution is null) = (resolved_at is null) and (resolution is null) = (resolved_by is null))
);
create index sharing_alerts_key on sharing_alerts (key_id, raised_at desc);

-- Each admin's copy of an alert in Telegram: an outbox claimed by the alerts job with SKIP LOCKED, sent once, then
-- edited whenever the alert's version moves past the one it shows.
create table sharing_alert_copies (
  alert_id bigint not null references sharing_alerts (id) on delete cascade,
  chat_id bigint not null check (chat_id > 0),
  message_id bigint,
  shown_version integer,
  due boolean not null default true,
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_error text,
  primary key (alert_id, chat_id)
);
create index sharing_alert_copies_due on sharing_alert_copies (next_attempt_at) where due;

-- What can be told of existing keys: their activation, bans and keys given without payment (who did it is unknown).
insert into key_events (key_id, at, kind, details)
  select id, activated_at, 'activated', '{"first": true}' from keys where activated_at is not null;
insert into key_events (key_id, at, kind, details)
  select id, banned_at, 'banned', '{}' from keys where banned_at is not null;
insert into key_events (key_id, at, kind, details)
  select id, sold_at, 'issued', jsonb_build_object('to', buyer_id, 'note', note)
  from keys where gift and sold_at is not null;
