-- Waking the service through pg_net (the local stand-in has its SQL surface): nothing is sent without a wake
-- target; with one, new work in every queue posts to it with its secret; the target is the service role's.
begin;
select plan(13);

select is(trove_private.wake_service('test'), null, 'wake_service: no target, nothing sent');
insert into public.ingested_items (source, platform, event_type, payload) values ('webhook', 'strava', 'x', '{}');
select is((select count(*)::int from net.http_request_queue), 0, 'new work without a target sends nothing');

select trove_private.set_wake_target('http://127.0.0.1:1/functions/v1/wake', repeat('k', 40));
-- A transaction wakes the service once: this one already tried (without a target); as a new one:
select set_config('trove.woken', '', true);
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
        select r.headers ->> 'X-Trove-Wake-Signature' from net.http_request_queue as r
        order by r.id desc limit 1
    ),
    (
        select
            encode(
                extensions.hmac(
                    (r.headers ->> 'X-Trove-Wake-Timestamp') || '.' || convert_from(r.body, 'UTF8'),
                    repeat('k', 40),
                    'sha256'
                ),
                'hex'
            )
        from net.http_request_queue as r
        order by r.id desc limit 1
    ),
    'signed with the shared secret (HMAC of the timestamp and the body)'
);
select is(
    (
        select count(*)::int from net.http_request_queue as r
        where r.headers::text like '%' || repeat('k', 40) || '%'
    ),
    0,
    'the secret itself never travels (pg_net''s queue is readable by its users on Supabase)'
);
select is(
    (
        select convert_from(r.body, 'UTF8')::jsonb ->> 'reason' from net.http_request_queue as r
        order by r.id desc limit 1
    ),
    'ingested_items',
    'saying which queue has work'
);
insert into public.ingested_items (source, platform, event_type, payload) values ('webhook', 'strava', 'z', '{}');
select is(
    (select count(*)::int from net.http_request_queue), 1, 'more work in the same transaction: still one wake-up'
);
select throws_ok(
    $$ select trove_private.set_wake_target(e'http://svc/wake\n', repeat('k', 40)) $$,
    '23514', null, 'a pasted newline is not a URL pg_net can send to'
);

-- A wake-up that fails never fails the insert (the work is stored; the heartbeat wakes the service).
create or replace function net.http_post(
    url text,
    body jsonb default '{}'::jsonb,
    params jsonb default '{}'::jsonb,
    headers jsonb default '{}'::jsonb,
    timeout_milliseconds integer default 5000
) returns bigint
language plpgsql as $fn$ begin raise exception 'invalid URL "%"', url; end; $fn$;
select set_config('trove.woken', '', true);
select lives_ok(
    $$ insert into public.ingested_items (source, platform, event_type, payload)
       values ('webhook', 'strava', 'w', '{}') $$,
    'new work is stored even when the wake-up fails'
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
