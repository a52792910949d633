-- Stock per product, duration and state, kept by triggers on keys, so the panel (every product page, the keys
-- tabs, the dashboard) reads a few rows instead of counting a million keys: that took 60–100 ms per page at
-- 1 000 000 keys, and more once the auth API's "last seen" stamps leave pages that index-only scans must visit.
-- The rows are deltas that the triggers only ever insert — concurrent sales never queue on one counter row — and a
-- read sums them; compact_key_counts() (run by the expiry job) folds them into one row per product, duration and
-- state.
create table key_counts (
  product_id bigint not null,
  days integer not null,
  state key_state not null,
  n bigint not null
);
create index key_counts_product on key_counts (product_id, days, state);

create function key_counts_inserted() returns trigger language plpgsql as $$
begin
  insert into key_counts (product_id, days, state, n)
    select product_id, days, state, count(*) from inserted_keys group by 1, 2, 3;
  return null;
end $$;

create function key_counts_deleted() returns trigger language plpgsql as $$
begin
  insert into key_counts (product_id, days, state, n)
    select product_id, days, state, -count(*) from deleted_keys group by 1, 2, 3;
  return null;
end $$;

create function key_counts_moved() returns trigger language plpgsql as $$
begin
  insert into key_counts (product_id, days, state, n)
    values (old.product_id, old.days, old.state, -1), (new.product_id, new.days, new.state, 1);
  return null;
end $$;

-- Generating and importing insert thousands of keys in one statement: counted once per statement.
create trigger key_counts_insert after insert on keys
  referencing new table as inserted_keys for each statement execute function key_counts_inserted();
create trigger key_counts_delete after delete on keys
  referencing old table as deleted_keys for each statement execute function key_counts_deleted();
-- Reservations, sales and releases change one key at a time; updates that keep the state (the auth API's stamps,
-- bans, notes) never call the function.
create trigger key_counts_update after update of product_id, days, state on keys
  for each row when (old.product_id <> new.product_id or old.days <> new.days or old.state <> new.state)
  execute function key_counts_moved();

-- Folds the deltas into one row per product, duration and state. Safe while keys change and while another
-- compaction runs: each delta is deleted (and summed) by exactly one of them.
create function compact_key_counts() returns void language sql as $$
  with gone as (delete from key_counts returning product_id, days, state, n)
  insert into key_counts (product_id, days, state, n)
    select product_id, days, state, sum(n) from gone group by 1, 2, 3 having sum(n) <> 0;
$$;

insert into key_counts (product_id, days, state, n)
  select product_id, days, state, count(*) from keys group by 1, 2, 3;
