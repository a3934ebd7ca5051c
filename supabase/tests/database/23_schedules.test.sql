-- The scheduled jobs, called directly (pg_cron runs the same calls): due syncs, media retries, health
-- checks, retention.
begin;
select plan(15);

select tests.create_two_archives();
-- Clear the fixtures' queued syncs: start with an empty sync queue.
update public.sync_requests set status = 'completed';
insert into public.connected_accounts (user_id, platform, platform_user_id, username, next_sync_at)
values
(tests.id('user', 'alice'), 'bluesky', 'did:plc:later', 'later', now() + interval '10 minutes'),
(tests.id('user', 'alice'), 'instagram', 'ig-off', 'off', null);
update public.connected_accounts set sync_enabled = false
where platform_user_id = 'ig-off';
update public.connected_accounts set status = 'token_expired'
where id = tests.id('account', 'bob');

-- due syncs
select is(trove_private.enqueue_due_syncs(now()), 1, 'only the due, enabled, active account is enqueued');
select is(
    (
        select sync_type::text || ':' || status from public.sync_requests
        where account_id = tests.id('account', 'alice') and status = 'pending'
    ),
    'scheduled:pending', 'as a scheduled sync'
);
select is(trove_private.enqueue_due_syncs(now()), 0, 'running the job again enqueues nothing twice');
select is(trove_private.enqueue_due_syncs(now() + interval '11 minutes'), 1, 'a later account is enqueued when due');

-- media retries
update public.media_downloads set status = 'failed', attempts = 3, last_attempt_at = now() - interval '2 days'
where id = tests.id('media_download', 'alice');
update public.media_downloads set status = 'failed', attempts = 3, last_attempt_at = now() - interval '1 hour'
where id = tests.id('media_download', 'bob');
select is(trove_private.retry_failed_media(now()), 1, 'downloads that failed over a day ago get a new round');
select is(
    (
        select status::text || ':' || attempts from public.media_downloads
        where id = tests.id('media_download', 'alice')
    ),
    'pending:0', 'with fresh attempts'
);
select is(
    (
        select status::text from public.media_downloads
        where id = tests.id('media_download', 'bob')
    ),
    'failed', 'a recent failure waits'
);

-- health check (seed 12.2)
update public.connected_accounts set status = 'error'
where platform_user_id = 'did:plc:later';
update public.media_downloads set created_at = now() - interval '2 hours'
where id = tests.id('media_download', 'alice');
select is(
    (
        select accounts_in_error || ':' || accounts_not_synced_24h || ':' || media_pending_over_1h || ':' || healthy
        from trove_private.run_health_check(now())
    ),
    '1:0:1:false', 'counts accounts in error and media pending over an hour'
);
select is(
    (select accounts_not_synced_24h from trove_private.run_health_check(now() + interval '25 hours')),
    1, 'and active accounts not synced for 24 hours'
);
select is((select count(*)::int from public.health_checks), 2, 'each check is kept for the operator');

-- retention
insert into public.sync_logs (account_id, sync_type, status, started_at, completed_at)
values
(tests.id('account', 'alice'), 'scheduled', 'success', now() - interval '91 days', now() - interval '91 days'),
(tests.id('account', 'alice'), 'scheduled', 'success', now() - interval '89 days', now() - interval '89 days'),
(tests.id('account', 'alice'), 'backfill', 'running', now() - interval '100 days', null);
insert into public.health_checks (checked_at, accounts_in_error, accounts_not_synced_24h, media_pending_over_1h, healthy)
values (now() - interval '31 days', 0, 0, 0, true);
select is(trove_private.purge_old_records(now()), 2, 'purges the 91-day-old log and the 31-day-old health check');
select is(
    (
        select count(*)::int from public.sync_logs
        where started_at < now() - interval '88 days'
    ),
    2, 'keeps logs younger than 90 days and runs still going'
);

-- pg_cron registration happens only in the scheduler's database; this test database is not it.
select is(
    (
        select count(*)::int from pg_extension
        where extname = 'pg_cron'
    ),
    0, 'no pg_cron in a database its scheduler does not serve (the migration skipped cleanly)'
);
select ok(
    has_function_privilege('service_role', 'trove_private.enqueue_due_syncs(timestamptz)', 'execute'),
    'the service role may run the jobs'
);
select ok(
    not has_function_privilege('authenticated', 'trove_private.enqueue_due_syncs(timestamptz)', 'execute'),
    'users may not'
);

select finish();
rollback;
