-- The webhook inbox (20261202120000_webhook_inbox): what the relay may keep, that it is bounded, that only
-- the service role may keep anything, and that kept deliveries are a work queue like the others.
begin;
select plan(14);

select isnt(
    trove_private.webhook_inbox_put('webhook-instagram', 'a=1', '{"x-hub-signature-256": "sha256=00"}', '\x7b7d'),
    null,
    'a delivery is kept, its id returned'
);
select is(
    (
        select convert_from(i.body, 'UTF8') || ' ' || i.query || ' ' || i.status::text as kept
        from public.webhook_inbox as i
    ),
    '{} a=1 pending',
    'as it came, waiting'
);
select throws_ok(
    $$ select trove_private.webhook_inbox_put('oauth-strava/callback', '', '{}', '\x7b7d') $$,
    '23514', null, 'only webhook deliveries are kept'
);
select throws_ok(
    $$ select trove_private.webhook_inbox_put('webhook-strava/../../x', '', '{}', '\x7b7d') $$,
    '23514', null, 'one plain secret segment at most'
);
select throws_ok(
    $$ select trove_private.webhook_inbox_put('webhook-strava', '', '{}', decode(repeat('00', 65537), 'hex')) $$,
    '23514', null, 'no body bigger than the service takes'
);
select throws_ok(
    $$ select trove_private.webhook_inbox_put('webhook-strava', '', '[]', '\x7b7d') $$,
    '23514', null, 'headers are an object'
);

select is(
    (select count(*)::int from trove_private.claim_work('webhook_inbox', 'w1', 10, '1 minute')),
    1,
    'the inbox is claimed like any work queue'
);
select ok(
    trove_private.extend_lease('webhook_inbox', (select id from public.webhook_inbox), 'w1', '1 minute'),
    'and its lease kept alive'
);

-- Bounded: 10,000 waiting deliveries fill it (the relay then answers 503 and the platform retries).
insert into public.webhook_inbox (request_path, body)
select
    'webhook-strava' as request_path,
    '\x7b7d'::bytea as body
from generate_series(1, 9999);
select throws_ok(
    $$ select trove_private.webhook_inbox_put('webhook-strava', '', '{}', '\x7b7d') $$,
    '53400', null, 'a full inbox keeps no more'
);
update public.webhook_inbox set status = 'completed'
where id in (
    select i.id from public.webhook_inbox as i
    order by i.id
    limit 5000
);
select lives_ok(
    $$ select trove_private.webhook_inbox_put('webhook-strava', '', '{}', '\x7b7d') $$,
    'finished deliveries do not count'
);
select cmp_ok(
    trove_private.purge_old_records(now() + interval '31 days'), '>=', 5000, 'finished deliveries are purged after 30 days'
);

-- Bounded in bytes too: the bodies kept come to 64 MiB at most, whatever their status.
delete from public.webhook_inbox;
insert into public.webhook_inbox (request_path, body, status)
select
    'webhook-strava' as request_path,
    decode(repeat('ab', 65536), 'hex') as body,
    'dead_letter'::public.processing_status_enum as status
from generate_series(1, 1024);
select throws_ok(
    $$ select trove_private.webhook_inbox_put('webhook-strava', '', '{}', '\x7b7d') $$,
    '53400', null, '64 MiB of bodies kept: no more'
);
select throws_like(
    $$ select trove_private.webhook_inbox_put('webhook-strava/the-secret', repeat('q', 5000), '{}', '\x7b7d') $$,
    'not a webhook delivery the inbox keeps%', 'a refusal says why, and never echoes the path (it may hold a secret)'
);

set local role authenticated;
select throws_ok(
    $$ select trove_private.webhook_inbox_put('webhook-strava', '', '{}', '\x7b7d') $$,
    '42501', null, 'users cannot keep deliveries'
);
reset role;

select finish();
rollback;
