-- Public mode (API keys, the public_posts view) shows a post's raw data through an ALLOW-LIST per platform:
-- a field is shown only when it is named here, so a field the platform adds tomorrow stays private until
-- somebody decides otherwise. The deny-list this replaces let `_photos[].location` (photo GPS) through.
--
-- Strava: the activity's name, description, sport, times and totals, kudos/comment/achievement counts and
-- photo counts. Never its coordinates, map, polylines, place names (location_city/state/country, segment
-- cities), segment efforts, splits, laps or best efforts (which carry positions), gear, device, heart rate,
-- embed token, athlete or other people (highlighted_kudosers). Every named top-level field must be a scalar
-- (a value of another shape is left out): nested objects are only the two below, each with its own list.
--   photos    (the detail's summary): only `count` and `use_primary_photo`; the primary photo's CDN URLs stay
--             out (readers get every photo through the post's media list, our copy first).
--   _photos[] (our photo list, one entry per photo): only `unique_id` (the media key, to match the media
--             list), `caption` and `default_photo`; never `location`, URLs, sizes or upload times.
-- Bluesky, Instagram and any platform not named: an empty object (their connectors do not exist yet; the
-- post's text and media are still shown). Whoever adds a connector adds its allow-list here, never a
-- deny-list.
create or replace function public.public_post_data(p_platform public.platform_enum, p_post_data jsonb)
returns jsonb
language sql
immutable
set search_path = ''
as $$
    select case
        when p_post_data is null then null
        when jsonb_typeof(p_post_data) <> 'object' then '{}'::jsonb
        when p_platform = 'strava' then (
            select coalesce(jsonb_object_agg(f.key, f.value), '{}'::jsonb)
            from (
                select
                    e.key,
                    case e.key
                        when 'photos' then (
                            select coalesce(jsonb_object_agg(k.key, k.value), '{}'::jsonb)
                            from jsonb_each(e.value) as k
                            where
                                k.key = any(array['count', 'use_primary_photo'])
                                and jsonb_typeof(k.value) in ('number', 'boolean', 'null')
                        )
                        when '_photos' then (
                            select coalesce(jsonb_agg(photo.kept order by ph.n), '[]'::jsonb)
                            from jsonb_array_elements(e.value) with ordinality as ph (value, n)
                            cross join lateral (
                                select coalesce(jsonb_object_agg(k.key, k.value), '{}'::jsonb) as kept
                                from jsonb_each(ph.value) as k
                                where
                                    k.key = any(array['unique_id', 'caption', 'default_photo'])
                                    and jsonb_typeof(k.value) in ('string', 'boolean', 'null')
                            ) as photo
                            where jsonb_typeof(ph.value) = 'object'
                        )
                        else e.value
                    end as value
                from jsonb_each(p_post_data) as e
                where
                    (
                        e.key = any(array[
                            'id', 'name', 'description', 'type', 'sport_type', 'workout_type',
                            'start_date', 'start_date_local', 'timezone', 'utc_offset',
                            'distance', 'moving_time', 'elapsed_time', 'total_elevation_gain',
                            'average_speed', 'max_speed', 'average_cadence',
                            'average_watts', 'weighted_average_watts', 'max_watts', 'kilojoules', 'device_watts',
                            'kudos_count', 'comment_count', 'achievement_count', 'pr_count', 'athlete_count',
                            'photo_count', 'total_photo_count', 'trainer', 'manual'
                        ])
                        and jsonb_typeof(e.value) in ('string', 'number', 'boolean', 'null')
                    )
                    or (e.key = 'photos' and jsonb_typeof(e.value) = 'object')
                    or (e.key = '_photos' and jsonb_typeof(e.value) = 'array')
            ) as f
        )
        else '{}'::jsonb
    end
$$;

comment on function public.public_post_data(public.platform_enum, jsonb) is
'A post''s raw data as public mode shows it: an allow-list of fields per platform (Strava: no coordinates, '
'map, polyline, place names or photo locations); an empty object for a platform without one.';

-- The view calls the function (the new body applies from now on), but its stored rows were computed with
-- the deny-list: recompute them now rather than at the next scheduled refresh.
refresh materialized view public.public_posts;
update public.materialized_view_state set stale = false, refreshed_at = now()
where name = 'public_posts';
