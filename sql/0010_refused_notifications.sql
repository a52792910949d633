-- AnyPay notifications refused although they came from one of AnyPay's addresses. Each may be a buyer who paid and
-- got nothing — a wrong secret key or merchant id in the panel, an amount that does not match the order — so the
-- owner must see them in the panel, not only in the log. AnyPay retries a refused notification many times: one row
-- per transaction and reason, counting the tries.
create table refused_notifications (
  id bigint generated always as identity primary key,
  first_at timestamptz not null default now(),
  last_at timestamptz not null default now(),
  tries integer not null default 1 check (tries >= 1),
  ip text,
  reason text not null check (char_length(reason) between 1 and 300),
  pay_id text check (char_length(pay_id) <= 64),
  transaction_id text check (char_length(transaction_id) <= 64),
  amount text check (char_length(amount) <= 32),
  currency text check (char_length(currency) <= 16),
  status text check (char_length(status) <= 32)
);
create unique index refused_notifications_once on refused_notifications (reason, (coalesce(transaction_id, '')));
create index refused_notifications_last on refused_notifications (last_at desc);
