-- Waking the service through pg_net (the local stand-in has its SQL surface): nothing is sent without a wake
-- target; with one, new work in every queue posts to it with its secret; the target is the service role's.
begin;
select plan(9);

select is(trove_private.wake_service('test'), null, 'wake_service: no target, nothing sent');
insert into public.ingested_items (source, platform, event_type, payload) values ('webhook', 'strava', 'x', '{}');
select is((select count(*)::int from net.http_request_queue), 0, 'new work without a target sends nothing');

select trove_private.set_wake_target('http://127.0.0.1:1/functions/v1/wake', repeat('k', 40));
insert into public.ingested_items (source, platform, event_type, payload) values ('webhook', 'strava', 'y', '{}');
select is(
    (select count(*)::int from net.http_request_queue), 1, 'one statement of new work, one wake-up'
);
select is(
    (
        select r.method || ' ' || r.url from net.http_request_queue as r
        order by r.id desc limit 1
    ),
    'POST http://127.0.0.1:1/functions/v1/wake',
    'the wake-up posts to the target'
);
select is(
    (
        select r.headers ->> 'X-Trove-Wake-Secret' from net.http_request_queue as r
        order by r.id desc limit 1
    ),
    repeat('k', 40),
    'with the shared secret'
);
select is(
    (
        select convert_from(r.body, 'UTF8')::jsonb ->> 'reason' from net.http_request_queue as r
        order by r.id desc limit 1
    ),
    'ingested_items',
    'saying which queue has work'
);
select throws_ok(
    $$ select trove_private.set_wake_target('file:///etc/passwd', repeat('k', 40)) $$,
    '23514', null, 'the target is an http(s) URL'
);
select throws_ok(
    $$ select trove_private.set_wake_target('http://x/', 'short') $$,
    '23514', null, 'the secret is long enough not to be guessed'
);

set local role authenticated;
select throws_ok(
    $$ select url from trove_private.wake_settings $$, '42501', null, 'users never see the wake secret'
);
reset role;

select finish();
rollback;
