-- The per-user archive version (API caches and ETags key on it) moves with every change a reader may see:
-- an activity turning private with its title unchanged (only its visibility changes), published, deleted, text,
-- media; and it stays put for the work-queue writes nobody reads.
begin;
select plan(27);

select tests.create_two_archives();

create temporary table marks on commit drop as select
    user_id,
    version
from public.archive_versions;

-- Remember every user's version now; bumps(name) is how far that user's version moved since.
create function pg_temp.mark()
returns void
language sql
as $$
    delete from pg_temp.marks;
    insert into pg_temp.marks (user_id, version) select user_id, version from public.archive_versions;
$$;

create function pg_temp.bumps(p_name text)
returns bigint
language sql
stable
as $$
    select coalesce((select v.version from public.archive_versions as v where v.user_id = tests.id('user', p_name)), 0)
        - coalesce((select m.version from pg_temp.marks as m where m.user_id = tests.id('user', p_name)), 0)
$$;

create function pg_temp.public_count()
returns integer
language sql
stable
as $$
    select count(*)::integer from public.feed(p_public_only => true)
$$;

-- Privacy is the normalizer's decision, stored on the post (visibility): a post turning private with its
-- title unchanged changes only that column (and the raw post, written with it).
select tests.authenticate_as('alice');
select is(pg_temp.public_count(), 1, 'alice''s activity is public');
select tests.clear_authentication();
select pg_temp.mark();
update public.posts set visibility = 'private'
where platform_post_id = 'alice-post-1';
select is(pg_temp.bumps('alice'), 1::bigint, 'made private (title unchanged): her archive version is bumped');
select is(pg_temp.bumps('bob'), 0::bigint, 'bob''s version is untouched');
select tests.authenticate_as('alice');
select is(pg_temp.public_count(), 0, 'and public mode no longer shows it');
select tests.clear_authentication();

select pg_temp.mark();
update public.posts set visibility = 'followers'
where platform_post_id = 'alice-post-1';
select is(pg_temp.bumps('alice'), 1::bigint, 'visibility changed: bumped');
select pg_temp.mark();
update public.posts set visibility = 'public'
where platform_post_id = 'alice-post-1';
select is(pg_temp.bumps('alice'), 1::bigint, 'visible to everyone again: bumped');
select pg_temp.mark();
update public.posts set public_data = public_data || '{"description": "new words"}'
where platform_post_id = 'alice-post-1';
select is(pg_temp.bumps('alice'), 1::bigint, 'its public fields changed: bumped');
select pg_temp.mark();
update public.ingested_posts set post_data = post_data || '{"private": false, "description": "new words"}'
where platform_post_id = 'alice-post-1';
select is(pg_temp.bumps('alice'), 1::bigint, 'any raw data change: bumped');

select pg_temp.mark();
update public.ingested_posts set post_data = post_data
where platform_post_id = 'alice-post-1';
select is(pg_temp.bumps('alice'), 0::bigint, 'the same raw data written again: not bumped');
update public.ingested_posts set status = 'pending', attempts = attempts + 1, detail_pending = true, error_message = 'x'
where platform_post_id = 'alice-post-1';
select is(pg_temp.bumps('alice'), 0::bigint, 'work-queue writes on the raw post (reprocess claims, details due): not bumped');

select pg_temp.mark();
update public.ingested_posts set post_data = post_data || '{"kudos_count": 9}';
select is(pg_temp.bumps('alice'), 1::bigint, 'one statement changing the raw data of both users: alice''s version is bumped');
select is(pg_temp.bumps('bob'), 1::bigint, '... and bob''s');

-- The normalized post
select pg_temp.mark();
update public.posts set published = false
where platform_post_id = 'alice-post-1';
select is(pg_temp.bumps('alice'), 1::bigint, 'unpublished: bumped');
select pg_temp.mark();
update public.posts set deleted_on_platform = true
where platform_post_id = 'alice-post-1';
select is(pg_temp.bumps('alice'), 1::bigint, 'deleted on the platform: bumped');
select pg_temp.mark();
update public.posts set text_content = 'alice evening run', published = true, deleted_on_platform = false
where platform_post_id = 'alice-post-1';
select is(pg_temp.bumps('alice'), 1::bigint, 'text changed: bumped');

-- Media
select pg_temp.mark();
delete from public.post_media
where media_download_id = tests.id('media_download', 'alice');
select is(pg_temp.bumps('alice'), 1::bigint, 'a file taken off the post: bumped');
select pg_temp.mark();
insert into public.post_media (ingested_post_id, media_download_id, user_id, position)
values (tests.id('ingested_post', 'alice'), tests.id('media_download', 'alice'), tests.id('user', 'alice'), 0);
select is(pg_temp.bumps('alice'), 1::bigint, 'a file added to the post: bumped');
select pg_temp.mark();
update public.post_media set position = 1
where media_download_id = tests.id('media_download', 'alice');
select is(pg_temp.bumps('alice'), 1::bigint, 'the post''s files reordered: bumped');
select pg_temp.mark();
update public.media_downloads set original_url = 'https://media.example.test/alice-resigned.jpg'
where id = tests.id('media_download', 'alice');
select is(pg_temp.bumps('alice'), 1::bigint, 'a new original URL while no copy is served: bumped');
select pg_temp.mark();
update public.media_downloads set status = 'failed', attempts = 3, error = 'timeout', last_attempt_at = now()
where id = tests.id('media_download', 'alice');
select is(pg_temp.bumps('alice'), 0::bigint, 'a failed download attempt: not bumped');
update public.media_downloads
set
    status = 'downloaded', content_type = 'image/jpeg', byte_size = 1,
    storage_path = tests.id('user', 'alice') || '/strava/' || repeat('a', 64) || '.jpg'
where id = tests.id('media_download', 'alice');
select is(pg_temp.bumps('alice'), 1::bigint, 'the copy landed: bumped');
select pg_temp.mark();
update public.media_downloads set original_url = 'https://media.example.test/alice-resigned-again.jpg'
where id = tests.id('media_download', 'alice');
select is(pg_temp.bumps('alice'), 0::bigint, 'a new original URL while our copy is served: not bumped');

-- Raw posts appearing and going away
insert into public.posts (account_id, platform, platform_post_id, content_type, text_content, created_at_platform)
values (tests.id('account', 'alice'), 'strava', 'alice-post-2', 'activity', 'second run', now());
select pg_temp.mark();
insert into public.ingested_posts (platform, account_id, platform_post_id, post_data)
values ('strava', tests.id('account', 'alice'), 'alice-post-2', '{"visibility": "only_me", "private": true}');
select is(pg_temp.bumps('alice'), 1::bigint, 'raw data arriving for a stored post: bumped');
select pg_temp.mark();
insert into public.ingested_posts (platform, account_id, platform_post_id, post_data)
values ('strava', tests.id('account', 'alice'), 'alice-post-3', '{"name": "third"}');
select is(pg_temp.bumps('alice'), 0::bigint, 'raw data of a post not stored yet: not bumped (the post''s insert is)');
select pg_temp.mark();
delete from public.ingested_posts
where platform_post_id = 'alice-post-2';
select is(pg_temp.bumps('alice'), 1::bigint, 'a stored post''s raw data removed: bumped');

-- The feeds' author
select pg_temp.mark();
update public.users set display_name = 'Alice Renamed'
where id = tests.id('user', 'alice');
select is(pg_temp.bumps('alice'), 1::bigint, 'a new display name (the feeds'' author): bumped');
select pg_temp.mark();
update public.users set display_name = 'Alice Renamed'
where id = tests.id('user', 'alice');
select is(pg_temp.bumps('alice'), 0::bigint, 'the same display name again: not bumped');

select finish();
rollback;
