-- Buyers renew the key they own in the bot (docs/panel.md#orders): a renewal is an order like a purchase — the same
-- checkout, promo codes, payment providers and notification endpoint — but it sells no key: it adds its days to the
-- key it names.

-- What an order is for: a key from stock ('purchase') or more days on a key the buyer owns ('renewal', `key_id`).
alter table orders add column kind text not null default 'purchase' check (kind in ('purchase', 'renewal'));
alter table orders add column key_id bigint references keys (id);
alter table orders add constraint orders_renewal_key check ((kind = 'renewal') = (key_id is not null));
-- A paid renewal can never go 'paid_no_stock': it needs no stock.
alter table orders add constraint orders_renewal_needs_no_stock check (kind = 'purchase' or status <> 'paid_no_stock');
create index orders_renewed_key on orders (key_id, id desc) where key_id is not null;

-- Days renewals added to a key that was not activated yet: its clock still starts at the first activation, and runs
-- `days + renewed_days` from there (the licence's bind). Activated keys get their days on `expires_at` instead.
alter table keys add column renewed_days integer not null default 0 check (renewed_days between 0 and 36500);
