-- Indexes behind the admin panel's lists (src/shop/listings.ts). Every list is a keyset page: "the next 50 rows
-- after the last one shown" is one index seek however deep the page, at 100 000 users or 1 000 000 keys.
-- Search is by prefix (text_pattern_ops), not substring: pg_trgm is not available in the embedded PGlite of
-- `bun run dev`, and a prefix is what the owner types (a key's beginning, a name, a @username).

-- Users: newest activity / newest registrations first, ties broken by id.
create index bot_users_last_seen_page on bot_users (last_seen_at desc, telegram_id desc);
create index bot_users_first_seen_page on bot_users (first_seen_at desc, telegram_id desc);
create index bot_users_first_name_prefix on bot_users (lower(first_name) text_pattern_ops);
create index bot_users_last_name_prefix on bot_users (lower(last_name) text_pattern_ops);

-- A product's unsold keys (available and reserved), newest first, all durations or one.
create index keys_unsold_page on keys (product_id, id desc) where state <> 'sold';
create index keys_unsold_days_page on keys (product_id, days, id desc) where state <> 'sold';
-- A product's sold keys, last sold first.
create index keys_sold_page on keys (product_id, sold_at desc, id desc) where state = 'sold';
-- Stock counts per product and duration read these small indexes alone (index-only), never the table:
-- available from keys_available (0001), unsold from keys_unsold_days_page, sold from this one.
create index keys_sold_days on keys (product_id, days) where state = 'sold';
-- Find a key by its beginning; a sold key by the HWID it is bound to.
create index keys_key_prefix on keys (key text_pattern_ops);
create index keys_hwid on keys (hwid) where hwid is not null;

-- Orders of one status, newest first.
create index orders_status_page on orders (status, id desc);
