-- A sharing alert (docs/panel.md#sharing-alerts): a key that HWID mismatches from this many distinct foreign PCs
-- within `sharing_alert_hours` hours is reported to every admin, at most once per key in that many hours.
alter table settings
  add column sharing_alert_uuids integer not null default 3 check (sharing_alert_uuids between 1 and 50),
  add column sharing_alert_hours integer not null default 24 check (sharing_alert_hours between 1 and 720);
