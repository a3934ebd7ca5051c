-- Work queues (ingested_items, ingested_posts, media_downloads): claim with a lease, complete, fail with
-- backoff, terminal states, lease expiry, release. The clock is moved by passing p_now.
begin;
select plan(37);

select tests.create_two_archives();
-- Start from a known queue: the fixtures' items plus three more pending raw pages.
insert into public.ingested_items (source, platform, account_id, event_type, payload)
select
    'fetch' as source, -- noqa: RF04
    'strava' as platform,
    tests.id('account', 'alice') as account_id,
    'page' as event_type,
    jsonb_build_object('n', n) as payload
from generate_series(1, 3) as n;

create temporary table t_claimed (id uuid) on commit drop;
grant all on t_claimed to public;

-- claim
insert into t_claimed select * from trove_private.claim_work('ingested_items', 'w1', 2, '5 minutes', now());
select is((select count(*)::int from t_claimed), 2, 'claim_work returns at most p_limit items');
select is(
    (
        select count(*)::int
        from public.ingested_items
        where
            id in (select id from t_claimed)
            and status = 'processing' and locked_by = 'w1' and attempts = 1 and locked_until = now() + interval '5 minutes'
    ),
    2, 'claimed items are processing, leased to the worker, attempt counted'
);
select is(
    (select count(*)::int from
        trove_private.claim_work('ingested_items', 'w2', 10, '5 minutes', now())
            as c (id)
    where c.id in (select id from t_claimed)),
    0, 'another worker never gets items under a live lease'
);
select is(
    (
        select count(*)::int from public.ingested_items
        where status = 'pending'
    ), 0,
    'the second worker took all the remaining pending items'
);

-- complete
select ok(
    not trove_private.complete_work('ingested_items', (
        select t.id from t_claimed as t
        order by t.id limit 1
    ), 'w2', now()),
    'a worker cannot complete an item it does not hold'
);
select ok(
    trove_private.complete_work('ingested_items', (
        select t.id from t_claimed as t
        order by t.id limit 1
    ), 'w1', now()),
    'the holder completes its item'
);
select is(
    (
        select status::text || ':' || (completed_at is not null)::text || ':' || coalesce(locked_by, '-')
        from public.ingested_items
        where id = (
            select t.id from t_claimed as t
            order by t.id limit 1
        )
    ),
    'completed:true:-', 'a completed item is done, stamped and unlocked'
);
select ok(
    not trove_private.complete_work('ingested_items', (
        select t.id from t_claimed as t
        order by t.id limit 1
    ), 'w1', now()),
    'completing twice does nothing'
);

-- fail with backoff
select is(
    trove_private.fail_work('ingested_items', (
        select t.id from t_claimed as t
        order by t.id desc limit 1
    ), 'w1', 'boom', false, now()),
    'failed', 'a first failure leaves the item failed, to retry'
);
select is(
    (
        select run_after - now() from public.ingested_items
        where id = (
            select t.id from t_claimed as t
            order by t.id desc limit 1
        )
    ),
    interval '30 seconds', 'first retry after 30 seconds'
);
select is(
    (
        select error_message from public.ingested_items
        where id = (
            select t.id from t_claimed as t
            order by t.id desc limit 1
        )
    ),
    'boom', 'the error is recorded'
);
select is(
    (select count(*)::int from
        trove_private.claim_work('ingested_items', 'w1', 10, '5 minutes', now() + interval '29 seconds')
            as c (id)
    where c.id = (
        select t.id from t_claimed as t
        order by t.id desc limit 1
    )),
    0, 'not retried before its backoff'
);
select is(
    (select count(*)::int from
        trove_private.claim_work('ingested_items', 'w1', 10, '5 minutes', now() + interval '31 seconds')
            as c (id)
    where c.id = (
        select t.id from t_claimed as t
        order by t.id desc limit 1
    )),
    1, 'retried once the backoff passed'
);
select trove_private.fail_work('ingested_items', (
    select t.id from t_claimed as t
    order by t.id desc limit 1
), 'w1', 'boom 2', false, now());
select is(
    (
        select run_after - now() from public.ingested_items
        where id = (
            select t.id from t_claimed as t
            order by t.id desc limit 1
        )
    ),
    interval '60 seconds', 'the backoff doubles'
);
-- attempts 3..5
select trove_private.claim_work('ingested_items', 'w1', 10, '5 minutes', now() + interval '1 hour');
select trove_private.fail_work('ingested_items', (
    select t.id from t_claimed as t
    order by t.id desc limit 1
), 'w1', 'boom 3', false, now());
select trove_private.claim_work('ingested_items', 'w1', 10, '5 minutes', now() + interval '1 hour');
select trove_private.fail_work('ingested_items', (
    select t.id from t_claimed as t
    order by t.id desc limit 1
), 'w1', 'boom 4', false, now());
select is(
    (
        select run_after - now() from public.ingested_items
        where id = (
            select t.id from t_claimed as t
            order by t.id desc limit 1
        )
    ),
    interval '4 minutes', 'fourth failure: 8 x 30 seconds'
);
select trove_private.claim_work('ingested_items', 'w1', 10, '5 minutes', now() + interval '1 hour');
select is(
    trove_private.fail_work('ingested_items', (
        select t.id from t_claimed as t
        order by t.id desc limit 1
    ), 'w1', 'boom 5', false, now()),
    'dead_letter', 'after the fifth attempt the item is dead-lettered'
);
select is(
    (select count(*)::int from
        trove_private.claim_work('ingested_items', 'w1', 10, '5 minutes', now() + interval '1 day')
            as c (id)
    where c.id = (
        select t.id from t_claimed as t
        order by t.id desc limit 1
    )),
    0, 'a dead-lettered item is never claimed again'
);

-- permanent failure
insert into public.ingested_posts (platform, account_id, platform_post_id, post_data)
values ('strava', tests.id('account', 'bob'), 'broken-1', '{}');
select trove_private.claim_work('ingested_posts', 'w1', 10, '5 minutes', now());
select is(
    trove_private.fail_work(
        'ingested_posts', (
            select id from public.ingested_posts
            where platform_post_id = 'broken-1'
        ), 'w1',
        'payload cannot be parsed', true, now()
    ),
    'dead_letter', 'a permanent failure dead-letters at once'
);

-- lease expiry: a dead worker's items come back
insert into public.ingested_posts (platform, account_id, platform_post_id, post_data)
values ('strava', tests.id('account', 'bob'), 'orphan-1', '{}');
select trove_private.claim_work('ingested_posts', 'dead-worker', 10, '1 minute', now());
select is(
    (select count(*)::int from
        trove_private.claim_work('ingested_posts', 'w2', 10, '5 minutes', now() + interval '30 seconds')
            as c (id)
    where c.id = (
        select id from public.ingested_posts
        where platform_post_id = 'orphan-1'
    )),
    0, 'a live lease is respected'
);
select is(
    (select count(*)::int from
        trove_private.claim_work('ingested_posts', 'w2', 10, '5 minutes', now() + interval '2 minutes')
            as c (id)
    where c.id = (
        select id from public.ingested_posts
        where platform_post_id = 'orphan-1'
    )),
    1, 'an expired lease hands the item to another worker'
);
select is(
    (
        select locked_by || ':' || attempts from public.ingested_posts
        where platform_post_id = 'orphan-1'
    ),
    'w2:2', 'the new holder has it and the crashed attempt counted'
);
select ok(
    not trove_private.complete_work(
        'ingested_posts', (
            select id from public.ingested_posts
            where platform_post_id = 'orphan-1'
        ), 'dead-worker', now()
    ),
    'the worker that lost its lease cannot complete the item'
);
select ok(
    not trove_private.extend_lease(
        'ingested_posts', (
            select id from public.ingested_posts
            where platform_post_id = 'orphan-1'
        ), 'dead-worker',
        '5 minutes', now()
    ),
    'nor extend its lease'
);
select ok(
    trove_private.extend_lease(
        'ingested_posts', (
            select id from public.ingested_posts
            where platform_post_id = 'orphan-1'
        ), 'w2',
        '10 minutes', now() + interval '2 minutes'
    ),
    'the holder extends its lease'
);
select is(
    (
        select locked_until - now() from public.ingested_posts
        where platform_post_id = 'orphan-1'
    ),
    interval '12 minutes', 'the lease runs from the extension'
);
-- poison: abandoned after the last attempt
update public.ingested_posts set attempts = 5
where platform_post_id = 'orphan-1';
select trove_private.claim_work('ingested_posts', 'w3', 10, '5 minutes', now() + interval '1 hour');
select is(
    (
        select status::text from public.ingested_posts
        where platform_post_id = 'orphan-1'
    ),
    'dead_letter', 'an item abandoned after its last attempt is dead-lettered, not handed out again'
);

-- release: back to pending, attempt not counted
insert into public.ingested_posts (platform, account_id, platform_post_id, post_data)
values ('strava', tests.id('account', 'bob'), 'released-1', '{}');
select trove_private.claim_work('ingested_posts', 'w1', 10, '5 minutes', now() + interval '2 hours');
select ok(
    trove_private.release_work(
        'ingested_posts', (
            select id from public.ingested_posts
            where platform_post_id = 'released-1'
        ), 'w1',
        now() + interval '15 minutes'
    ),
    'the holder releases an item'
);
select is(
    (
        select status::text || ':' || attempts || ':' || (run_after - now())::text
        from public.ingested_posts
        where platform_post_id = 'released-1'
    ),
    'pending:0:00:15:00', 'a released item is pending again, attempt not counted, not before p_run_after'
);

-- media downloads: three attempts, 404/410 unavailable
select trove_private.claim_work('media_downloads', 'w1', 10, '5 minutes', now());
select is(
    (
        select status::text from public.media_downloads
        where id = tests.id('media_download', 'alice')
    ),
    'downloading', 'a claimed download is downloading'
);
select is(
    trove_private.fail_work('media_downloads', tests.id('media_download', 'alice'), 'w1', 'HTTP 404', true, now()),
    'unavailable', 'a gone file (404/410) is unavailable at once'
);
select trove_private.fail_work('media_downloads', tests.id('media_download', 'bob'), 'w1', 'timeout', false, now());
select trove_private.claim_work('media_downloads', 'w1', 10, '5 minutes', now() + interval '1 hour');
select trove_private.fail_work('media_downloads', tests.id('media_download', 'bob'), 'w1', 'timeout', false, now());
select trove_private.claim_work('media_downloads', 'w1', 10, '5 minutes', now() + interval '1 hour');
select is(
    trove_private.fail_work('media_downloads', tests.id('media_download', 'bob'), 'w1', 'timeout', false, now()),
    'failed', 'after three attempts a download is failed'
);
select is(
    (
        select error || ':' || attempts from public.media_downloads
        where id = tests.id('media_download', 'bob')
    ),
    'timeout:3', 'with its error and attempts recorded'
);
select is(
    (select count(*)::int from trove_private.claim_work('media_downloads', 'w1', 10, '5 minutes', now() + interval '1 day')),
    0, 'a download failed three times is not claimed again'
);

-- give up: a final rejection (oversize, not media) ends the item at once
insert into public.media_downloads (ingested_post_id, user_id, platform, media_key, original_url)
values (tests.id('ingested_post', 'alice'), tests.id('user', 'alice'), 'strava', 'too-big', 'https://x.test/big.mp4');
select trove_private.claim_work('media_downloads', 'w1', 10, '5 minutes', now() + interval '2 days');
select is(
    trove_private.give_up_work(
        'media_downloads', (
            select id from public.media_downloads
            where media_key = 'too-big'
        ), 'w1', 'over 50 MB', now()
    ),
    'failed', 'give_up_work fails a download at once'
);
select is(
    (
        select attempts || ':' || error from public.media_downloads
        where media_key = 'too-big'
    ),
    '3:over 50 MB', 'with its attempts used up and the reason recorded'
);
select is(
    (select count(*)::int from
        trove_private.claim_work('media_downloads', 'w1', 10, '5 minutes', now() + interval '3 days')
            as c (id)
    where c.id = (
        select id from public.media_downloads
        where media_key = 'too-big'
    )),
    0, 'and it is not claimed again'
);

select throws_ok(
    $$ select trove_private.claim_work('posts', 'w1', 1, '1 minute') $$,
    '22023', 'unknown work queue posts', 'only the work queues can be claimed'
);

select finish();
rollback;
