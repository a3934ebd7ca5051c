-- The owner disconnects an account (the web app's "Disconnect"): tokens wiped, syncing stopped, the archive
-- kept, nothing said to the owner; only the service may do it.
begin;
select plan(10);

select tests.create_two_archives();

select lives_ok(
    $$ select trove_private.disconnect_account(tests.id('account', 'alice')) $$,
    'the service disconnects an account'
);
select is(
    (
        select row(status::text, access_token, refresh_token, token_expires_at, next_sync_at, webhook_subscribed)::text
        from public.connected_accounts
        where id = tests.id('account', 'alice')
    ),
    row('disconnected', null::text, null::text, null::timestamptz, null::timestamptz, false)::text,
    'its tokens are wiped and it is no longer scheduled'
);
select is(
    (
        select count(*)::int from public.posts
        where account_id = tests.id('account', 'alice')
    ),
    (
        select count(*)::int from public.posts
        where user_id = tests.id('user', 'alice')
    ),
    'its archive stays'
);
select ok(
    (
        select count(*) > 0 from public.posts
        where account_id = tests.id('account', 'alice')
    ),
    'the archive has posts to keep'
);
select is(
    (
        select status::text from public.sync_logs
        where id = tests.id('queued_sync_log', 'alice')
    ),
    'cancelled', 'its waiting sync is cancelled'
);
select is(
    (
        select count(*)::int from public.notifications
        where account_id = tests.id('account', 'alice') and kind <> 'sync_failing'
    ),
    0, 'the owner is not told what they did themselves'
);
select is(
    (
        select status::text from public.connected_accounts
        where id = tests.id('account', 'bob')
    ),
    'active', 'another account is untouched'
);
select ok(
    trove_private.enqueue_due_syncs(now() + interval '1 day') >= 0,
    'the schedule runs a day later'
);
select is(
    (
        select count(*)::int from public.sync_requests
        where account_id = tests.id('account', 'alice') and status = 'pending'
    ),
    0, 'and does not sync the disconnected account'
);

select tests.authenticate_as('bob');
select throws_ok(
    $$ select trove_private.disconnect_account(tests.id('account', 'bob')) $$,
    '42501', null, 'a user cannot call it, even for their own account'
);
select tests.clear_authentication();

select * from finish();
rollback;
