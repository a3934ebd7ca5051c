-- Public mode in SQL, the same for every platform: it shows only posts their normalizer called public
-- (published, not deleted), and of their raw data only posts.public_data, the allow-list the normalizer
-- stored; never the raw post. What each platform allows is tested with its normalizer (pytest).
begin;
select plan(13);

select tests.create_two_archives();

-- Any key, at any depth, that names a position, a route or a place.
create function pg_temp.location_keys(p_data jsonb)
returns setof text
language sql
immutable
as $$
    select distinct k.key
    from jsonb_path_query(coalesce(p_data, '{}'::jsonb), 'strict $.**') as v (value)
    cross join lateral jsonb_object_keys(case when jsonb_typeof(v.value) = 'object' then v.value else '{}'::jsonb end) as k (key)
    where k.key ~* '(latlng|latitude|longitude|polyline|location|address)'
        or k.key ~* '(^|_)(lat|lng|lon|map|city|state|country)(_|$)'
$$;

-- alice's activity with photo GPS, coordinates and a route in its raw data; its public fields as stored.
update public.ingested_posts set post_data = '{
    "id": 101, "name": "alice morning run", "sport_type": "TrailRun", "visibility": "everyone",
    "start_latlng": [52.52, 13.405], "location_city": "Berlin", "map": {"polyline": "ki{eFvqfiV"},
    "_photos": [{"unique_id": "U-1", "caption": "summit", "location": [52.52, 13.405]}]
}'
where platform_post_id = 'alice-post-1';
update public.posts set public_data = '{
    "id": 101, "name": "alice morning run", "sport_type": "TrailRun", "_photos": [{"unique_id": "U-1", "caption": "summit"}]
}'
where platform_post_id = 'alice-post-1';
-- Three more of alice's: followers only, private, and public but deleted on the platform.
insert into public.posts (
    account_id, platform, platform_post_id, content_type, text_content, created_at_platform,
    visibility, public_data, deleted_on_platform
)
values
(tests.id('account', 'alice'), 'strava', 'alice-friends', 'activity', 'friends', now(), 'followers', '{}', false),
(tests.id('account', 'alice'), 'strava', 'alice-private', 'activity', 'alone', now(), 'private', '{}', false),
(tests.id('account', 'alice'), 'strava', 'alice-gone', 'activity', 'gone', now(), 'public', '{}', true);

select ok(
    public.post_is_public((
        select p from public.posts as p
        where platform_post_id = 'alice-post-1'
    )),
    'a published, public post is public'
);
select ok(
    not public.post_is_public((
        select p from public.posts as p
        where platform_post_id = 'alice-friends'
    )),
    'a followers-only post is not public'
);
select ok(
    not public.post_is_public((
        select p from public.posts as p
        where platform_post_id = 'alice-private'
    )),
    'a private post is not public'
);
select ok(
    not public.post_is_public((
        select p from public.posts as p
        where platform_post_id = 'alice-gone'
    )),
    'a post deleted on its platform is not public'
);
select throws_ok(
    $$ update public.posts set visibility = 'everyone' where platform_post_id = 'alice-post-1' $$,
    '23514', null, 'visibility is one of public, followers, private'
);
select throws_ok(
    $$ update public.posts set public_data = '[1, 2]' where platform_post_id = 'alice-post-1' $$,
    '23514', null, 'public_data is an object'
);

select tests.authenticate_as('alice');
select ok(
    (
        select post_data -> '_photos' -> 0 ? 'location' from public.feed()
        where text_content = 'alice morning run'
    ),
    'the owner still sees her raw data, photo locations included'
);
select results_eq(
    $$ select text_content, post_data from public.feed(p_public_only => true) $$,
    $$ select text_content, public_data from public.posts where platform_post_id = 'alice-post-1' $$,
    'public mode shows only the public post, with exactly its stored public fields'
);
select is_empty(
    $$ select pg_temp.location_keys(post_data) from public.feed(p_public_only => true) $$,
    'public mode: no location key at any depth'
);
select tests.clear_authentication();

select ok(trove_private.refresh_public_posts(), 'public_posts is refreshed after the writes');
select results_eq(
    $$ select text_content, post_data from public.public_posts where user_id = tests.id('user', 'alice') $$,
    $$ select text_content, public_data from public.posts where platform_post_id = 'alice-post-1' $$,
    'public_posts holds only the public post, with exactly its stored public fields'
);
select is_empty(
    $$ select pg_temp.location_keys(post_data) from public.public_posts $$,
    'public_posts: no location key at any depth'
);
select ok(
    not exists (
        select 1 from pg_proc
        where proname = 'public_post_data'
    ),
    'no SQL function decides a platform''s public fields any more'
);

select finish();
rollback;
