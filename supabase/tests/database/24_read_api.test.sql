-- The read side in SQL: the feed as each caller sees it, public mode's privacy, cursors, and the public_posts
-- materialized view's staleness and refresh.
begin;
select plan(21);

select tests.create_two_archives();
-- alice's fixture activity is public; add a followers-only one and a private one with coordinates (their
-- visibility as the normalizer stores it; a post is private unless its normalizer says otherwise).
insert into public.ingested_posts (platform, account_id, platform_post_id, post_data)
values
('strava', tests.id('account', 'alice'), 'alice-friends', '{"visibility": "followers_only", "start_latlng": [1, 2]}'),
('strava', tests.id('account', 'alice'), 'alice-private', '{"visibility": "only_me", "private": true}');
insert into public.posts (
    account_id, platform, platform_post_id, content_type, text_content, created_at_platform, visibility
)
values
(tests.id('account', 'alice'), 'strava', 'alice-friends', 'activity', 'with friends', now() - interval '1 day', 'followers'),
(tests.id('account', 'alice'), 'strava', 'alice-private', 'activity', 'alone', now() - interval '2 days', 'private');
update public.ingested_posts set post_data = post_data || '{"start_latlng": [45.5, -122.6], "map": {"polyline": "x"}}'
where platform_post_id = 'alice-post-1';
-- Each post's link to the original, as the normalizers store it.
update public.posts set permalink = 'https://platform.test/' || platform_post_id
where account_id = tests.id('account', 'alice');
-- alice's photo (deduplicated by its key) is on the followers-only activity too, and has been copied.
insert into public.post_media (ingested_post_id, media_download_id, user_id, position)
select
    ip.id,
    tests.id('media_download', 'alice') as media_download_id,
    tests.id('user', 'alice') as user_id,
    0 as position -- noqa: RF04
from public.ingested_posts as ip
where ip.platform_post_id = 'alice-friends';
update public.media_downloads
set
    status = 'downloaded', content_type = 'image/jpeg', byte_size = 1,
    storage_path = tests.id('user', 'alice') || '/strava/' || repeat('a', 64) || '.jpg'
where id = tests.id('media_download', 'alice');

select tests.authenticate_as('alice');
select is(
    (
        select array_agg(text_content order by text_content) from public.feed()
        where media @> '[{"media_key": "alice-photo-1"}]'
    ),
    array['alice morning run', 'with friends'],
    'a photo shared by two posts is in both posts'' media'
);
select is((select count(*)::int from public.feed()), 3, 'the owner sees all her posts');
select is((select count(*)::int from public.feed(p_public_only => true)), 1, 'public mode shows only posts visible to everyone');
select ok(
    (
        select post_data ? 'start_latlng' from public.feed()
        where text_content = 'alice morning run'
    ),
    'the owner sees her coordinates'
);
select ok(
    (select not(post_data ? 'start_latlng' or post_data ? 'map') from public.feed(p_public_only => true)),
    'public mode strips coordinates and routes'
);
select is(
    (select array_agg(permalink order by permalink) from public.feed(p_public_only => true)),
    array['https://platform.test/alice-post-1'],
    'public mode links to the original of public posts only'
);
select is(
    (
        select array_agg(text_content order by created_at_platform desc)
        from public.feed(p_limit => 2, p_cursor => (select cursor from public.feed(p_limit => 1)))
    ),
    array['with friends', 'alone'], 'a cursor continues right after the post it came from'
);
select throws_ok($$ select * from public.feed(p_cursor => 'garbage!') $$, '22023', 'invalid cursor', 'a bad cursor is refused');
select throws_ok($$ select * from public.feed(p_limit => 0) $$, '22023', 'limit must be between 1 and 100', 'limit bounds');
select tests.authenticate_as('bob');
select is((select count(*)::int from public.feed()), 1, 'another user sees only his own');
select is((select count(*)::int from public.account_stats()), 1, 'stats cover only the caller''s accounts');
select tests.clear_authentication();

-- public_posts: stale after writes, refreshed when stale
select trove_private.refresh_public_posts();
select is(
    (
        select count(*)::int from public.public_posts
        where user_id = tests.id('user', 'alice')
    ), 1,
    'public_posts holds only alice''s public post'
);
select ok(
    (
        select not(post_data ? 'start_latlng') from public.public_posts
        where user_id = tests.id('user', 'alice')
    ),
    'without coordinates'
);
select is(
    (
        select media -> 0 ->> 'media_key' from public.public_posts
        where user_id = tests.id('user', 'alice')
    ),
    'alice-photo-1',
    'with its copied media'
);
update public.posts set text_content = 'alone, edited'
where platform_post_id = 'alice-private';
select ok((
    select stale from public.materialized_view_state
    where name = 'public_posts'
), 'a write marks it stale');
select ok(trove_private.refresh_public_posts(), 'a stale view is refreshed');
select ok(not trove_private.refresh_public_posts(), 'a fresh one is left alone');

-- archive versions: one bump per statement for each user whose posts changed
create temporary table t_before on commit drop as select
    user_id,
    version
from public.archive_versions;
update public.posts set text_content = text_content || '!'
where user_id = tests.id('user', 'alice');
select
    is(
        (
            select v.version - b.version from public.archive_versions as v inner join t_before as b on v.user_id = b.user_id
            where v.user_id = tests.id('user', 'alice')
        ),
        1::bigint, 'a statement changing three of alice''s posts bumps her archive version once'
    );
select
    is(
        (
            select v.version - b.version from public.archive_versions as v inner join t_before as b on v.user_id = b.user_id
            where v.user_id = tests.id('user', 'bob')
        ),
        0::bigint, 'bob''s version is untouched'
    );

-- a media copy landing bumps its owner's version (readers get the copy now); other downloader writes do not.
-- The copy made above is gone again first (that alone is a change readers see: see 25_archive_version_bumps).
update public.media_downloads set status = 'pending'
where id = tests.id('media_download', 'alice');
create temporary table t_media_before on commit drop as select
    user_id,
    version
from public.archive_versions;
update public.media_downloads set status = 'failed', attempts = 1
where id = tests.id('media_download', 'alice');
update public.media_downloads set attempts = 2
where id = tests.id('media_download', 'alice');
select
    is(
        (
            select v.version - b.version from public.archive_versions as v inner join t_media_before as b on v.user_id = b.user_id
            where v.user_id = tests.id('user', 'alice')
        ),
        0::bigint, 'a failed or retried download leaves cached pages alone'
    );
update public.media_downloads set status = 'downloaded'
where id = tests.id('media_download', 'alice');
select
    is(
        (
            select v.version - b.version from public.archive_versions as v inner join t_media_before as b on v.user_id = b.user_id
            where v.user_id = tests.id('user', 'alice')
        ),
        1::bigint, 'a copy that lands bumps its owner''s archive version'
    );

select finish();
rollback;
