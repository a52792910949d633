-- Checkout, second edition (docs/panel.md#promo-codes, docs/panel.md#telegram-stars): promo codes, a price in
-- Telegram Stars, and orders that say how they were paid and what was actually charged. The money rules are
-- constraints, so no path (panel, CLI, bot, a hand-written query) can charge below zero, above the list price, or
-- pay an order without saying with what.

-- A code stored canonical (upper case): buyers type it in any case and it is matched as upper(input). Either a
-- percent or a fixed amount of roubles off. NULL limits mean "no limit"; `days` NULL means every duration.
create table promo_codes (
  id bigint generated always as identity primary key,
  code text not null unique check (code ~ '^[A-Z0-9_-]{3,32}$'),
  percent integer check (percent between 1 and 100),
  rub integer check (rub between 1 and 10000000),
  product_id bigint references products (id),
  days integer[] check (cardinality(days) between 1 and 5 and days <@ array[1, 7, 14, 30, 90]),
  max_uses integer check (max_uses between 1 and 1000000),
  max_uses_per_buyer integer default 1 check (max_uses_per_buyer between 1 and 1000000),
  -- The last day the code works, a Moscow calendar day (the shop's day, orders/sales.ts), inclusive.
  valid_until date,
  enabled boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check ((percent is null) <> (rub is null))
);

-- A price in Telegram Stars per duration, beside the one in roubles. A row whose rouble price is 0 keeps its Stars
-- price while the duration is off sale (the rouble price decides what is on sale).
alter table prices add column stars integer check (stars between 1 and 100000);

-- What an order costs and how it was paid.
--   amount_rub:    what the buyer is asked to pay in roubles, after the promo code (0: the code pays it all);
--   discount_rub:  what the code took off the duration's price (amount_rub + discount_rub is that price);
--   stars:         the same in Stars after the code (NULL: not payable in Stars);
--   provider:      who paid it, set with paid_at;
--   paid_rub, paid_stars: what was actually charged — the revenue (a test payment or a code charges nothing).
alter table orders drop constraint orders_amount_rub_check;
alter table orders add constraint orders_amount_rub_check check (amount_rub >= 0);
alter table orders add column discount_rub integer not null default 0 check (discount_rub >= 0);
-- The code as the buyer applied it, beside its id: codes are never renamed, and the order keeps its own record.
alter table orders add column promo_code_id bigint references promo_codes (id);
alter table orders add column promo_code text;
alter table orders add constraint orders_promo_code_check check ((promo_code_id is null) = (promo_code is null));
alter table orders add column stars integer check (stars >= 0);
alter table orders add column provider text check (provider in ('anypay', 'telegram_stars', 'promo', 'test'));
alter table orders add column paid_rub integer check (paid_rub >= 0);
alter table orders add column paid_stars integer check (paid_stars >= 0);
-- Only a code takes anything off, and only a code may make an order free.
alter table orders add constraint orders_discount_by_promo
  check (promo_code_id is not null or (discount_rub = 0 and amount_rub > 0));

-- Orders paid before this migration were paid through AnyPay or an admin's test button: the ledger says which.
update orders o
set provider = coalesce((select p.source from payments p where p.transaction_id = o.transaction_id),
                        case when o.test then 'test' else 'anypay' end),
    paid_rub = case
      when coalesce((select p.source from payments p where p.transaction_id = o.transaction_id), 'anypay') = 'test'
        then 0
      else o.amount_rub end
where o.paid_at is not null;
alter table orders add constraint orders_paid_by check (paid_at is null or (provider is not null and paid_rub is not null));

-- A code's uses: its held and paid orders, counted under the code's row lock when an order applies it.
create index orders_promo_code on orders (promo_code_id, user_id) where promo_code_id is not null;

-- The ledger takes Stars payments (currency XTR, the charge id as transaction id) and the zero payment of an order a
-- code paid in full; a Stars payment given back (refundStarPayment) keeps its row, marked refunded.
alter table payments drop constraint payments_source_check;
alter table payments add constraint payments_source_check
  check (source in ('anypay', 'test', 'telegram_stars', 'promo'));
alter table payments add column refunded_at timestamptz;
alter table payments add column refunded_by text check (char_length(refunded_by) <= 100);

alter table settings add column stars_enabled boolean not null default false;
