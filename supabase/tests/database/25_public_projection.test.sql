-- Public mode's projection of the raw post is an allow-list per platform: an activity's photo GPS
-- (`_photos[].location`), coordinates, map, polylines and place names never leave through public_post_data,
-- the feed's public mode or the public_posts view, at any depth; a field nobody named is left out.
begin;
select plan(16);

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

-- alice's activity, as a detailed activity with its photo list (the shape the worker stores).
update public.ingested_posts set post_data = '{
    "id": 101, "resource_state": 3, "name": "alice morning run", "description": "hills", "type": "Run",
    "sport_type": "TrailRun", "start_date": "2026-11-01T07:00:00Z", "start_date_local": "2026-11-01T08:00:00Z",
    "timezone": "(GMT+01:00) Europe/Berlin", "utc_offset": 3600, "distance": 10123.4, "moving_time": 3600,
    "elapsed_time": 3700, "total_elevation_gain": 120.5, "average_speed": 2.8, "max_speed": 4.1,
    "kudos_count": 3, "comment_count": 1, "achievement_count": 2, "photo_count": 0, "total_photo_count": 1,
    "visibility": "everyone", "private": false, "athlete": {"id": 7, "resource_state": 1},
    "start_latlng": [52.52, 13.405], "end_latlng": [52.53, 13.41], "start_latitude": 52.52, "start_longitude": 13.405,
    "location_city": "Berlin", "location_state": "Berlin", "location_country": "Germany",
    "map": {"id": "a101", "polyline": "ki{eFvqfiV", "summary_polyline": "ki{eFvqfiV"},
    "segment_efforts": [{"segment": {"city": "Berlin", "start_latlng": [52.52, 13.405]}}],
    "splits_metric": [{"split": 1}], "laps": [{"lap_index": 1}], "best_efforts": [{"name": "1k"}],
    "embed_token": "secret-embed", "gear": {"id": "b1", "name": "shoes"}, "average_heartrate": 150.1,
    "highlighted_kudosers": [{"display_name": "bob", "avatar_url": "https://example.test/bob.jpg"}],
    "photos": {"count": 1, "use_primary_photo": true, "primary": {"unique_id": "U-1", "urls": {"600": "https://cdn.test/1.jpg"}}},
    "_photos": [{"unique_id": "U-1", "caption": "summit", "default_photo": true, "location": [52.52, 13.405],
                 "urls": {"2048": "https://cdn.test/1-2048.jpg"}, "sizes": {"2048": [2048, 1536]}, "uploaded_at": "2026-11-01T09:00:00Z"}],
    "brand_new_field": {"home_address": "Hauptstr. 1"}
}'
where platform_post_id = 'alice-post-1';

select is(
    public.public_post_data('strava', (
        select post_data from public.ingested_posts
        where platform_post_id = 'alice-post-1'
    )),
    '{
        "id": 101, "name": "alice morning run", "description": "hills", "type": "Run", "sport_type": "TrailRun",
        "start_date": "2026-11-01T07:00:00Z", "start_date_local": "2026-11-01T08:00:00Z",
        "timezone": "(GMT+01:00) Europe/Berlin", "utc_offset": 3600, "distance": 10123.4, "moving_time": 3600,
        "elapsed_time": 3700, "total_elevation_gain": 120.5, "average_speed": 2.8, "max_speed": 4.1,
        "kudos_count": 3, "comment_count": 1, "achievement_count": 2, "photo_count": 0, "total_photo_count": 1,
        "photos": {"count": 1, "use_primary_photo": true},
        "_photos": [{"unique_id": "U-1", "caption": "summit", "default_photo": true}]
    }'::jsonb,
    'a Strava activity shows exactly its allow-listed fields'
);
select is_empty(
    $$ select pg_temp.location_keys(public.public_post_data('strava', post_data)) from public.ingested_posts $$,
    'no location key at any depth of any public projection'
);
select is(
    public.public_post_data('strava', '{"name": {"lat": 1, "lng": 2}, "distance": [52.5, 13.4], "id": 5}'),
    '{"id": 5}'::jsonb,
    'an allow-listed field holding an object or array is left out'
);
select is(
    public.public_post_data('strava', '{"_photos": [{"location": [1, 2]}, "x", {"caption": {"location": [1, 2]}}]}'),
    '{"_photos": [{}, {}]}'::jsonb,
    'photo entries keep only their allow-listed scalar fields'
);
select is(
    public.public_post_data('strava', '{"brand_new_field": 1, "start_latlng": [1, 2]}'), '{}'::jsonb,
    'a field nobody named is left out'
);
select is(
    public.public_post_data('bluesky', '{"text": "hi", "embed": {"location": [1, 2]}}'), '{}'::jsonb,
    'bluesky has no allow-list yet: nothing of its raw data is public'
);
select is(
    public.public_post_data('instagram', '{"caption": "hi", "location": {"lat": 1}}'), '{}'::jsonb,
    'instagram has no allow-list yet: nothing of its raw data is public'
);
select is(public.public_post_data('strava', '[1, 2]'), '{}'::jsonb, 'raw data that is not an object shows nothing');
select ok(public.public_post_data('strava', null) is null, 'a post without raw data stays without');

select tests.authenticate_as('alice');
select ok(
    (
        select post_data -> '_photos' -> 0 ? 'location' from public.feed()
        where text_content = 'alice morning run'
    ),
    'the owner still sees her photo locations'
);
select is(
    (
        select post_data -> '_photos' from public.feed(p_public_only => true)
        where text_content = 'alice morning run'
    ),
    '[{"unique_id": "U-1", "caption": "summit", "default_photo": true}]'::jsonb,
    'public mode shows the photo list without locations'
);
select is_empty(
    $$ select pg_temp.location_keys(post_data) from public.feed(p_public_only => true) $$,
    'public mode: no location key at any depth'
);
select ok(
    (select count(*) = 1 from public.feed(p_public_only => true)),
    'public mode still shows the public activity'
);
select tests.clear_authentication();

select ok(trove_private.refresh_public_posts(), 'public_posts is refreshed after the write');
select is(
    (
        select post_data -> '_photos' from public.public_posts
        where user_id = tests.id('user', 'alice')
    ),
    '[{"unique_id": "U-1", "caption": "summit", "default_photo": true}]'::jsonb,
    'public_posts shows the photo list without locations'
);
select is_empty(
    $$ select pg_temp.location_keys(post_data) from public.public_posts $$,
    'public_posts: no location key at any depth'
);

select finish();
rollback;
