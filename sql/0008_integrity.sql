-- Rules the code already keeps, now kept by the database too, so no other path (a hand-written query, a future
-- feature) can break them.

-- One key per order: an order is paid for one key, and a second key on it would be sold without payment.
drop index keys_order;
create unique index keys_order on keys (order_id) where order_id is not null;

-- Only a sold key can be banned: a banned key in stock would be sold and then answer the loader «Key banned».
alter table keys add constraint keys_banned_only_sold check (banned_at is null or state = 'sold');

-- The name is the auth API's path segment: "." and ".." are rewritten away by URL normalisation (the loader would
-- never reach its product), and a name with a space at either end cannot be typed back reliably.
alter table products add constraint products_name_reachable
  check (name not in ('.', '..') and name !~ '^\s' and name !~ '\s$');
