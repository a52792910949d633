-- The whole shop's schema. Migrations are forward-only: never edit a file that has shipped, add the next number.
-- Rules that protect money and keys live here as constraints, so no code path (panel, CLI, bot, a future script)
-- can break them.

create table products (
  id bigint generated always as identity primary key,
  -- The name is also the auth API path segment: /api/<name>/auth.
  name text not null unique check (char_length(name) between 1 and 64 and strpos(name, '/') = 0 and name !~ '[[:cntrl:]]'),
  description text not null default '' check (char_length(description) <= 3000),
  -- An archived product is hidden from the bot; its sold keys keep answering the auth API.
  archived_at timestamptz,
  build_path text,
  build_name text,
  build_size bigint check (build_size between 1 and 52428800),
  build_sha256 text check (build_sha256 ~ '^[0-9a-f]{64}$'),
  build_uploaded_at timestamptz,
  -- Telegram's file_id of the uploaded build: reused so the zip is uploaded to Telegram once, not per sale.
  build_file_id text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table prices (
  product_id bigint not null references products (id) on delete cascade,
  days integer not null check (days in (1, 7, 14, 30, 90)),
  rub integer not null check (rub >= 0 and rub <= 10000000),
  updated_at timestamptz not null default now(),
  primary key (product_id, days)
);

create table bot_users (
  telegram_id bigint primary key,
  username text,
  first_name text not null default '',
  last_name text,
  language_code text,
  first_seen_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  -- Set when Telegram answers 403 (the user blocked the bot); cleared when they write to the bot again.
  blocked_at timestamptz
);
create index bot_users_last_seen on bot_users (last_seen_at desc);
create index bot_users_username on bot_users (lower(username) text_pattern_ops);

create table bot_admins (
  telegram_id bigint primary key check (telegram_id > 0),
  note text not null default '' check (char_length(note) <= 200),
  created_at timestamptz not null default now()
);

create table panel_accounts (
  id bigint generated always as identity primary key,
  login text not null unique check (login ~ '^[A-Za-z0-9._-]{1,64}$'),
  -- argon2id, as produced by Bun.password.hash.
  password_hash text not null check (password_hash like '$argon2id$%'),
  created_at timestamptz not null default now(),
  password_changed_at timestamptz not null default now()
);

-- One row of shop-wide settings. The bot starts switched off: the customer turns it on from the panel.
create table settings (
  id integer primary key default 1 check (id = 1),
  bot_token text,
  bot_enabled boolean not null default false,
  maintenance boolean not null default false,
  anypay_merchant_id text,
  anypay_secret_key text,
  test_payments boolean not null default false,
  updated_at timestamptz not null default now()
);
insert into settings (id) values (1);

create type order_status as enum ('pending', 'paid', 'delivered', 'failed', 'expired', 'paid_no_stock');

create table orders (
  -- Also AnyPay's pay_id, which allows at most 15 digits.
  id bigint generated always as identity primary key check (id < 1000000000000000),
  user_id bigint not null references bot_users (telegram_id),
  product_id bigint not null references products (id),
  days integer not null check (days in (1, 7, 14, 30, 90)),
  amount_rub integer not null check (amount_rub > 0),
  status order_status not null default 'pending',
  created_at timestamptz not null default now(),
  -- Until when the reserved key is held for this order.
  reserved_until timestamptz not null,
  paid_at timestamptz,
  delivered_at timestamptz,
  -- AnyPay's transaction: unique so one payment can never be applied to two orders.
  transaction_id text unique,
  payment_method text,
  test boolean not null default false,
  failure text,
  updated_at timestamptz not null default now(),
  check (status not in ('paid', 'delivered', 'paid_no_stock') or paid_at is not null)
);
create index orders_status on orders (status, created_at desc);
create index orders_user on orders (user_id, created_at desc);
create index orders_pending_expiry on orders (reserved_until) where status = 'pending';
create index orders_paid_at on orders (paid_at) where paid_at is not null;

create type key_state as enum ('available', 'reserved', 'sold');

create table keys (
  id bigint generated always as identity primary key,
  product_id bigint not null references products (id) on delete cascade,
  days integer not null check (days in (1, 7, 14, 30, 90)),
  key text not null unique check (char_length(key) between 1 and 128 and key ~ '^[!-~]+$'),
  state key_state not null default 'available',
  order_id bigint references orders (id),
  buyer_id bigint references bot_users (telegram_id),
  -- A key sold without payment (keys:issue): the explicit alternative to an order.
  gift boolean not null default false,
  sold_at timestamptz,
  hwid text check (char_length(hwid) between 1 and 128),
  activated_at timestamptz,
  expires_at timestamptz,
  banned_at timestamptz,
  note text not null default '' check (char_length(note) <= 500),
  -- Written at most every few minutes per key, so the loader's hot path stays a read.
  last_auth_at timestamptz,
  last_auth_ip text,
  created_at timestamptz not null default now(),
  check (state <> 'sold' or (sold_at is not null and (order_id is not null or gift))),
  check (state <> 'reserved' or order_id is not null),
  check (state = 'sold' or (hwid is null and activated_at is null and expires_at is null)),
  check ((activated_at is null) = (expires_at is null))
);
-- Stock and allocation: the available keys of one product and duration, oldest first.
create index keys_available on keys (product_id, days, id) where state = 'available';
create index keys_product_sold on keys (product_id, sold_at desc) where state = 'sold';
create index keys_order on keys (order_id) where order_id is not null;
create index keys_buyer on keys (buyer_id) where buyer_id is not null;

-- What a bot user did and when: shown in the panel's user page, newest first.
create table user_events (
  id bigint generated always as identity primary key,
  user_id bigint not null references bot_users (telegram_id) on delete cascade,
  at timestamptz not null default now(),
  kind text not null check (char_length(kind) between 1 and 64),
  detail jsonb not null default '{}'
);
create index user_events_user on user_events (user_id, id desc);

-- Outbox of purchases to send to buyers: claimed by the delivery job with SKIP LOCKED, retried with backoff.
create type delivery_status as enum ('pending', 'sent', 'blocked', 'failed');
create table deliveries (
  id bigint generated always as identity primary key,
  order_id bigint not null unique references orders (id),
  user_id bigint not null references bot_users (telegram_id),
  status delivery_status not null default 'pending',
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_error text,
  created_at timestamptz not null default now(),
  sent_at timestamptz
);
create index deliveries_due on deliveries (next_attempt_at) where status = 'pending';

-- Broadcasts to every bot user: one row per message, one row per recipient, claimed by the broadcast job.
create type broadcast_status as enum ('pending', 'running', 'done', 'cancelled');
create table broadcasts (
  id bigint generated always as identity primary key,
  text text not null check (char_length(text) between 1 and 4096),
  status broadcast_status not null default 'pending',
  created_by text not null,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz
);

create type recipient_status as enum ('pending', 'sent', 'blocked', 'failed', 'cancelled');
create table broadcast_recipients (
  broadcast_id bigint not null references broadcasts (id) on delete cascade,
  user_id bigint not null references bot_users (telegram_id) on delete cascade,
  status recipient_status not null default 'pending',
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_error text,
  sent_at timestamptz,
  primary key (broadcast_id, user_id)
);
create index broadcast_recipients_due on broadcast_recipients (broadcast_id, next_attempt_at) where status = 'pending';
