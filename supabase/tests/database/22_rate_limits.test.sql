-- The per-platform budget shared by every worker: set from headers, taken per request, bulk work keeps a
-- fifth of each window free, and an exhausted window says when to come back.
begin;
select plan(14);

select is(
    trove_private.window_end('15 minutes', '2026-11-23 10:07:00+00'), '2026-11-23 10:15:00+00'::timestamptz,
    '15-minute windows end at :00/:15/:30/:45'
);
select is(
    trove_private.window_end('1 day', '2026-11-23 10:07:00+00'), '2026-11-24 00:00:00+00'::timestamptz,
    'daily windows end at UTC midnight'
);
select is(trove_private.take_rate_limit('bluesky', 'bulk', now()), null, 'a platform with no known budget is not held back');

select trove_private.record_rate_limit('strava', '15min', '15 minutes', 100, 98, '2026-11-23 10:07:00+00');
select trove_private.record_rate_limit('strava', 'daily', '1 day', 1000, 500, '2026-11-23 10:07:00+00');
select is(
    (
        select used || '/' || request_limit || ' until ' || to_char(resets_at at time zone 'UTC', 'HH24:MI')
        from public.rate_limit_budgets
        where platform = 'strava' and window_name = '15min'
    ),
    '98/100 until 10:15', 'the headers set the budget'
);
select is(trove_private.take_rate_limit('strava', 'interactive', '2026-11-23 10:08:00+00'), null, 'interactive work takes request 99');
select is(trove_private.take_rate_limit('strava', 'interactive', '2026-11-23 10:08:00+00'), null, 'and request 100');
select is(
    trove_private.take_rate_limit('strava', 'interactive', '2026-11-23 10:08:00+00'), '2026-11-23 10:15:00+00'::timestamptz,
    'an exhausted window says when it resets'
);
select is(
    (
        select used from public.rate_limit_budgets
        where platform = 'strava' and window_name = 'daily'
    ), 502,
    'every window counts the requests taken'
);
select is(
    trove_private.take_rate_limit('strava', 'interactive', '2026-11-23 10:15:00+00'), null,
    'a new window starts fresh'
);
select is(
    (
        select used || ' until ' || to_char(resets_at at time zone 'UTC', 'HH24:MI') from public.rate_limit_budgets
        where platform = 'strava' and window_name = '15min'
    ),
    '1 until 10:30', 'counting from the new window'
);

-- bulk keeps 20% free
select trove_private.record_rate_limit('strava', '15min', '15 minutes', 100, 79, '2026-11-23 10:20:00+00');
select is(trove_private.take_rate_limit('strava', 'bulk', '2026-11-23 10:20:00+00'), null, 'bulk work may take request 80');
select is(
    trove_private.take_rate_limit('strava', 'bulk', '2026-11-23 10:20:00+00'), '2026-11-23 10:30:00+00'::timestamptz,
    'but not the last fifth of the window'
);
select is(trove_private.take_rate_limit('strava', 'interactive', '2026-11-23 10:20:00+00'), null, 'which stays free for polling');

-- the daily window holds everything back
select trove_private.record_rate_limit('strava', 'daily', '1 day', 1000, 1000, '2026-11-23 10:21:00+00');
select is(
    trove_private.take_rate_limit('strava', 'interactive', '2026-11-23 10:21:00+00'), '2026-11-24 00:00:00+00'::timestamptz,
    'an exhausted daily window waits until midnight UTC'
);

select finish();
rollback;
