-- The sync queue and seed 8.1's failure handling: enqueue/join, priority, claim, finish, every error kind's
-- account transition, the 5-error escalation with its notification, release and abandoned requests.
begin;
select plan(46);

select tests.create_two_archives();
-- The fixtures queued a scheduled sync for each account.

-- enqueue and join
select is(
    (
        select status::text from public.sync_logs
        where id = tests.id('queued_sync_log', 'alice')
    ),
    'queued', 'a requested sync has a queued log at once'
);
select is(
    (
        select completed_at from public.sync_logs
        where id = tests.id('queued_sync_log', 'alice')
    ),
    null, 'a queued log is not complete'
);
select is(
    trove_private.enqueue_sync(tests.id('account', 'alice'), 'manual', 'sync now', now()),
    tests.id('queued_sync_log', 'alice'),
    'a second request joins the one in flight and returns its log'
);
select is(
    (
        select count(*)::int from public.sync_requests
        where account_id = tests.id('account', 'alice')
    ),
    1, 'still one request for the account'
);
select is(
    (
        select priority::int from public.sync_requests
        where id = tests.id('sync_request', 'alice')
    ),
    0, 'joining with "sync now" makes the waiting request urgent'
);
select throws_ok(
    $$ insert into public.sync_requests (account_id, sync_type) values (tests.id('account', 'alice'), 'manual') $$,
    '23505', null, 'the database itself refuses a second request in flight for an account'
);
select throws_ok(
    $$ select trove_private.enqueue_sync('00000000-0000-4000-8000-00000000dead', 'manual') $$,
    'P0002', null, 'an unknown account cannot be synced'
);

-- claim: most urgent first
select is(
    (
        select array_agg(c.account_id order by c.priority)
        from trove_private.claim_sync_requests('w1', 10, '10 minutes', now()) as c
    ),
    array[tests.id('account', 'alice'), tests.id('account', 'bob')],
    'claims the manual request before the scheduled one'
);
select is(
    (
        select status::text || ':' || (started_at = now())::text from public.sync_logs
        where id = tests.id('queued_sync_log', 'alice')
    ),
    'running:true', 'a claimed request''s log is running'
);
select is(
    (select count(*)::int from trove_private.claim_sync_requests('w2', 10, '10 minutes', now())),
    0, 'nothing left for a second worker'
);
select is(
    trove_private.enqueue_sync(tests.id('account', 'alice'), 'webhook', null, now()),
    tests.id('queued_sync_log', 'alice'),
    'a request while a sync runs joins the running one'
);
select is(
    (
        select rerun_sync_type::text from public.sync_requests
        where id = tests.id('sync_request', 'alice')
    ),
    'webhook', '... and is remembered on it, to run again when it finishes'
);
select is(
    trove_private.enqueue_sync(tests.id('account', 'alice'), 'scheduled', null, now()),
    tests.id('queued_sync_log', 'alice'),
    'a scheduled (polling) request joins too'
);
select is(
    (
        select rerun_sync_type::text from public.sync_requests
        where id = tests.id('sync_request', 'alice')
    ),
    'scheduled', '... and the widest kind asked for is kept (a poll reads pages; an event sync may not)'
);

-- finish
update public.connected_accounts set error_count = 3, error_message = 'old trouble'
where id = tests.id('account', 'alice');
select ok(
    not trove_private.finish_sync(tests.id('sync_request', 'alice'), 'w2', 'success', '1 hour', now()),
    'only the holder finishes a sync'
);
select ok(
    trove_private.finish_sync(tests.id('sync_request', 'alice'), 'w1', 'success', '1 hour', now()),
    'the holder finishes its sync'
);
select is(
    (
        select status::text || ':' || (completed_at is not null)::text from public.sync_logs
        where id = tests.id('queued_sync_log', 'alice')
    ),
    'success:true', 'the log is successful and complete'
);
select is(
    (
        select error_count || ':' || coalesce(error_message, '-') || ':' || last_sync_status || ':' || (next_sync_at - now())::text
        from public.connected_accounts
        where id = tests.id('account', 'alice')
    ),
    '0:-:success:01:00:00', 'success resets the error state and schedules the next sync in the interval'
);
select is(
    (
        select string_agg(sync_type::text || ':' || status::text, ',') from public.sync_requests
        where account_id = tests.id('account', 'alice') and status in ('pending', 'processing')
    ),
    'scheduled:pending', 'what was asked for during the sync is queued as soon as it finishes'
);
select isnt(
    trove_private.enqueue_sync(tests.id('account', 'alice'), 'manual', null, now()),
    tests.id('queued_sync_log', 'alice'),
    'after it finished, a new request gets a new log'
);

-- fail: transient -> 2^error_count minutes
create temporary table t_req on commit drop as
select * from trove_private.claim_sync_requests('w1', 10, '10 minutes', now() + interval '1 second');
select ok(
    trove_private.fail_sync(
        (
            select id from t_req
            where account_id = tests.id('account', 'alice')
        ), 'w1', 'transient', 'HTTP 503', null, now()
    ),
    'the holder records a failed sync'
);
select is(
    (
        select error_count || ':' || status || ':' || last_sync_status || ':' || error_message || ':' || (next_sync_at - now())::text
        from public.connected_accounts
        where id = tests.id('account', 'alice')
    ),
    '1:active:failed:HTTP 503:00:02:00', 'a transient error: error_count 1, next try in 2^1 minutes'
);
select is(
    (
        select status::text || ':' || error_message || ':' || (error_details ->> 'kind') from public.sync_logs
        where id = (
            select sync_log_id from t_req
            where account_id = tests.id('account', 'alice')
        )
    ),
    'failed:HTTP 503:transient', 'the sync log records the failure and its kind'
);

-- five transient errors -> error + one notification
delete from public.notifications;
create function pg_temp.fail_alice(p_kind text, p_message text, p_retry timestamptz default null)
returns boolean language sql as $$
    select trove_private.fail_sync(
        (select c.id from trove_private.claim_sync_requests('w1', 1, '10 minutes', now() + interval '1 year') as c),
        'w1', p_kind, p_message, p_retry, now()
    )
    from (select trove_private.enqueue_sync(tests.id('account', 'alice'), 'manual', null, now())) as e
$$;
select pg_temp.fail_alice('transient', 'HTTP 503');
select pg_temp.fail_alice('transient', 'HTTP 503');
select is(
    (
        select (next_sync_at - now())::text from public.connected_accounts
        where id = tests.id('account', 'alice')
    ),
    '00:08:00', 'third error: 2^3 minutes'
);
select pg_temp.fail_alice('transient', 'HTTP 503');
select is(
    (
        select status::text from public.connected_accounts
        where id = tests.id('account', 'alice')
    ),
    'active', 'four errors: still active'
);
select is((select count(*)::int from public.notifications), 0, 'no notification before the fifth error');
select pg_temp.fail_alice('transient', 'HTTP 500');
select is(
    (
        select status::text || ':' || error_count from public.connected_accounts
        where id = tests.id('account', 'alice')
    ),
    'error:5', 'the fifth error puts the account in error'
);
select is(
    (select kind || ':' || user_id::text from public.notifications),
    'sync_failing:' || tests.id('user', 'alice'), 'and tells its owner'
);
select pg_temp.fail_alice('transient', 'HTTP 500');
select is((select count(*)::int from public.notifications), 1, 'one unread notification, not one per failure');
select is(
    (
        select count(*)::int from public.sync_requests as r
        where r.account_id = tests.id('account', 'alice') and r.status in ('pending', 'processing')
    ),
    0, 'no request left in flight after failures'
);
select trove_private.enqueue_due_syncs(now() + interval '1 year');
select is(
    (
        select count(*)::int from public.sync_requests as r
        where r.account_id = tests.id('account', 'alice') and r.status in ('pending', 'processing')
    ),
    0, 'an account in error is not scheduled'
);
select pg_temp.fail_alice('transient', 'HTTP 500');
update public.connected_accounts set status = 'active'
where id = tests.id('account', 'alice');

-- success after errors resets
select trove_private.enqueue_sync(tests.id('account', 'alice'), 'manual', null, now());
select trove_private.finish_sync(
    (
        select c.id from trove_private.claim_sync_requests('w1', 10, '10 minutes', now() + interval '2 years') as c
        where c.account_id = tests.id('account', 'alice')
    ),
    'w1', 'partial', '30 minutes', now()
);
select is(
    (
        select status::text || ':' || error_count || ':' || last_sync_status from public.connected_accounts
        where id = tests.id('account', 'alice')
    ),
    'active:0:partial', 'a partial success resets the error count too'
);

-- rate limit -> the reset time
select pg_temp.fail_alice('rate_limit', 'HTTP 429', now() + interval '7 minutes');
select is(
    (
        select (next_sync_at - now())::text || ':' || status from public.connected_accounts
        where id = tests.id('account', 'alice')
    ),
    '00:07:00:active', 'a rate limit waits for the reset time'
);

-- auth -> token_expired + notification
delete from public.notifications;
select pg_temp.fail_alice('auth', 'HTTP 401');
select is(
    (
        select status::text from public.connected_accounts
        where id = tests.id('account', 'alice')
    ),
    'token_expired', 'an auth error marks the token expired'
);
select is((select kind from public.notifications), 'reauthorization_required', 'and asks the owner to reconnect');
select throws_ok(
    $$ select trove_private.enqueue_sync(tests.id('account', 'alice'), 'manual') $$,
    '55000', null, 'an account with an expired token cannot be synced until reconnected'
);

-- not found -> disconnected
update public.connected_accounts set status = 'active'
where id = tests.id('account', 'alice');
delete from public.notifications;
select pg_temp.fail_alice('not_found', 'HTTP 404');
select is(
    (
        select status::text from public.connected_accounts
        where id = tests.id('account', 'alice')
    ),
    'disconnected', 'a missing account is disconnected'
);
select is((select kind from public.notifications), 'account_disconnected', 'and its owner is told');

-- invalid_grant -> disconnected with the seed's message
update public.connected_accounts set status = 'active'
where id = tests.id('account', 'alice');
delete from public.notifications;
select pg_temp.fail_alice('invalid_grant', 'invalid_grant: refresh token revoked');
select is(
    (
        select status::text || ':' || error_message from public.connected_accounts
        where id = tests.id('account', 'alice')
    ),
    'disconnected:Token refresh failed. Reauthorization required.', 'a refused refresh disconnects the account'
);
select is((select kind from public.notifications), 'reauthorization_required', 'and asks for reauthorization');
select throws_ok(
    $$ select trove_private.fail_sync(tests.id('sync_request', 'bob'), 'w1', 'weird', 'x') $$,
    '22023', null, 'unknown error kinds are refused'
);

-- release (shutdown) and abandoned requests
select ok(
    trove_private.release_sync(tests.id('sync_request', 'bob'), 'w1', now()),
    'the holder releases a sync it cannot finish'
);
select is(
    (
        select r.status || ':' || l.status from public.sync_requests as r inner join public.sync_logs as l on r.sync_log_id = l.id
        where r.id = tests.id('sync_request', 'bob')
    ),
    'pending:queued', 'a released sync is pending again and its log queued'
);
select trove_private.claim_sync_requests('dead-1', 10, '1 minute', now());
select trove_private.claim_sync_requests('dead-2', 10, '1 minute', now() + interval '2 minutes');
select is(
    (
        select locked_by from public.sync_requests
        where id = tests.id('sync_request', 'bob')
    ),
    'dead-2', 'a dead worker''s sync is claimed again after its lease'
);
select trove_private.claim_sync_requests('dead-3', 10, '1 minute', now() + interval '4 minutes');
select trove_private.claim_sync_requests('w9', 10, '1 minute', now() + interval '6 minutes');
select is(
    (
        select r.status || ':' || l.status from public.sync_requests as r inner join public.sync_logs as l on r.sync_log_id = l.id
        where r.id = tests.id('sync_request', 'bob')
    ),
    'dead_letter:failed', 'a sync abandoned three times is dead-lettered and its log failed'
);
select is(
    trove_private.enqueue_due_syncs(now() + interval '3 years'), 1,
    'the account is scheduled again afterwards (bob)'
);

select finish();
rollback;
