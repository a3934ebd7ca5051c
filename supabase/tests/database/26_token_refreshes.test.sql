-- Tokens that lapse unless refreshed (connected_accounts.token_refresh_at): the hourly job queues a
-- token_refresh run for each account that is due, once, and never for an account that must be reconnected.
begin;
select plan(8);

select tests.create_two_archives();
-- create_archive queued a scheduled sync for each: a token refresh would join it, so start from none.
delete from public.sync_requests;

update public.connected_accounts set token_refresh_at = now() - interval '1 minute'
where id = tests.id('account', 'alice');
update public.connected_accounts set token_refresh_at = now() + interval '2 days'
where id = tests.id('account', 'bob');

select is(trove_private.enqueue_token_refreshes(now()), 1, 'only the account whose token is due is queued');
select is(
    (
        select r.sync_type::text || ':' || (l.metadata ->> 'trigger_reason')
        from public.sync_requests as r
        inner join public.sync_logs as l on r.sync_log_id = l.id
        where r.account_id = tests.id('account', 'alice') and r.status = 'pending'
    ),
    'token_refresh:token_refresh', 'as a token_refresh run, its log saying why'
);
select is(trove_private.enqueue_token_refreshes(now()), 1, 'running the job again joins the queued run');
select is(
    (
        select count(*)::int from public.sync_requests
        where account_id = tests.id('account', 'alice')
    ),
    1, 'and queues nothing twice'
);
select is(trove_private.enqueue_token_refreshes(now() + interval '3 days'), 2, 'a later account is queued when due');

delete from public.sync_requests;
update public.connected_accounts set status = 'token_expired'
where id = tests.id('account', 'alice');
update public.connected_accounts set access_token = null
where id = tests.id('account', 'bob');
select is(
    trove_private.enqueue_token_refreshes(now() + interval '3 days'), 0,
    'an account to reconnect or without a token is left alone'
);

select ok(
    has_function_privilege('service_role', 'trove_private.enqueue_token_refreshes(timestamptz)', 'execute'),
    'the service role may run the job'
);
select ok(
    not has_function_privilege('authenticated', 'trove_private.enqueue_token_refreshes(timestamptz)', 'execute'),
    'users may not'
);

select finish();
rollback;
