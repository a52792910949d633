-- The buyer's log recorded a pressed button as its raw callback data ("d:1:7:899"), which the panel could only show
-- as a code. The bot now records what the press meant (src/bot/keyboards.ts, pressedEvent); this gives the events
-- recorded before the same kinds and details, so the panel words old and new alike. Data of no known button stays
-- as it is (kind 'button').
update user_events set kind = 'catalogue', detail = '{}' where kind = 'button' and detail->>'data' = 'cat';
update user_events set kind = 'purchases', detail = '{}' where kind = 'button' and detail->>'data' = 'my';
update user_events set kind = 'broadcast_opened', detail = '{}' where kind = 'button' and detail->>'data' = 'adm:bc';

update user_events
set kind = 'product_viewed',
    detail = jsonb_build_object('productId', (regexp_match(detail->>'data', '^p:(\d{1,15})$'))[1]::bigint)
where kind = 'button' and detail->>'data' ~ '^p:\d{1,15}$';

update user_events
set kind = case when detail->>'data' like 'buy:%' then 'purchase_confirmed' else 'duration_chosen' end,
    detail = (
      select jsonb_build_object('productId', m[1]::bigint, 'days', m[2]::int, 'rub', m[3]::int)
      from regexp_match(detail->>'data', '^(?:d|buy):(\d{1,15}):(\d{1,2}):(\d{1,8})$') as m
    )
where kind = 'button' and detail->>'data' ~ '^(d|buy):\d{1,15}:\d{1,2}:\d{1,8}$';

update user_events
set kind = 'test_payment',
    detail = jsonb_build_object('orderId', (regexp_match(detail->>'data', '^pay:(\d{1,15})$'))[1]::bigint)
where kind = 'button' and detail->>'data' ~ '^pay:\d{1,15}$';

update user_events
set kind = 'maintenance_switched', detail = jsonb_build_object('on', detail->>'data' = 'adm:mt:1')
where kind = 'button' and detail->>'data' in ('adm:mt:0', 'adm:mt:1');

update user_events
set kind = case when detail->>'data' like 'bc:go:%' then 'broadcast_confirmed' else 'broadcast_dropped' end,
    detail = '{}'
where kind = 'button' and detail->>'data' ~ '^bc:(go|no):[\w-]{1,24}$';
