-- Buyers move a key to a new PC themselves, in the bot («Сбросить привязку»), at most once per cooldown.

-- «Сброс привязки покупателем: раз в N дней»: 0 switches the buyer's reset off (the button is hidden). A year at
-- most: a longer cooldown is the same as off, and says so less honestly.
alter table settings add column hwid_reset_cooldown_days integer not null default 7
  check (hwid_reset_cooldown_days between 0 and 365);

-- When the buyer last reset this key's HWID: the cooldown runs from here. Admin resets (panel, CLI) do not touch it,
-- so support helping a buyer never costs the buyer their own reset.
alter table keys add column buyer_reset_at timestamptz;
