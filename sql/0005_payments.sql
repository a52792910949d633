-- Every payment we accepted, one row per AnyPay transaction (or test button press). orders.transaction_id holds the
-- payment that paid an order; this ledger also keeps a second payment for an order that was already paid, so money
-- that arrives twice is on record for the admin to refund instead of vanishing into a log line.
create type payment_outcome as enum ('applied', 'no_stock', 'duplicate');

create table payments (
  id bigint generated always as identity primary key,
  -- AnyPay's transaction_id, or "test:<order id>" for the admins' test button.
  transaction_id text not null unique check (char_length(transaction_id) between 1 and 128),
  order_id bigint not null references orders (id),
  user_id bigint not null references bot_users (telegram_id),
  amount numeric(12, 2) not null check (amount >= 0),
  currency text not null check (currency ~ '^[A-Z]{3}$'),
  method text check (char_length(method) <= 64),
  email text check (char_length(email) <= 254),
  profit numeric(12, 2),
  test boolean not null default false,
  source text not null check (source in ('anypay', 'test')),
  -- applied: the order was paid by it; no_stock: paid, but no key was left (order is paid_no_stock);
  -- duplicate: the order had already been paid by another transaction — refund or settle by hand.
  outcome payment_outcome not null,
  received_at timestamptz not null default now()
);
create index payments_order on payments (order_id);
create index payments_duplicate on payments (received_at desc) where outcome = 'duplicate';

-- Deliveries an admin must look at (the buyer blocked the bot, or Telegram kept failing), and the blocked ones the
-- delivery job retries once the buyer writes to the bot again.
create index deliveries_attention on deliveries (created_at desc) where status in ('blocked', 'failed');
create index deliveries_blocked_user on deliveries (user_id) where status = 'blocked';
