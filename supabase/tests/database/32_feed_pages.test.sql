-- The feed's usual page (no platform, type or search filter) on its cached plan, and the one-statement page of
-- the read API (trove_private.feed_for_reader): bounds, cursors of both forms, ties, times before 1970, and who
-- may read as whom.
begin;
select plan(24);

select tests.create_two_archives();
-- alice's pages, apart from her fixture posts (which are recent): five hours of 2001, one at a microsecond
-- past the hour, two at the same instant (told apart by id), and two before 1970.
insert into public.posts (account_id, platform, platform_post_id, content_type, text_content, created_at_platform)
values
(tests.id('account', 'alice'), 'strava', 'page-1', 'activity', 'page 1', '2001-01-01 01:00:00+00'),
(tests.id('account', 'alice'), 'strava', 'page-2', 'activity', 'page 2', '2001-01-01 02:00:00+00'),
(tests.id('account', 'alice'), 'strava', 'page-3', 'activity', 'page 3', '2001-01-01 03:00:00.123456+00'),
(tests.id('account', 'alice'), 'strava', 'page-5', 'activity', 'page 5', '2001-01-01 05:00:00+00'),
(tests.id('account', 'alice'), 'strava', 'old-1950', 'activity', 'old 1950', '1950-06-01 12:00:00+00'),
(tests.id('account', 'alice'), 'strava', 'old-1960', 'activity', 'old 1960', '1960-06-01 12:00:00.5+00');
-- Two far in the future, where microseconds since the epoch need all of a bigint's digits.
insert into public.posts (account_id, platform, platform_post_id, content_type, text_content, created_at_platform)
values
(tests.id('account', 'alice'), 'strava', 'far-1', 'activity', 'far 20357', '20357-04-17 18:14:27.999937+00'),
(tests.id('account', 'alice'), 'strava', 'far-2', 'activity', 'far 40000', '40000-01-01 00:00:00.000001+00');
-- The two at one instant, with ids in a known order (the greater id first, as the feed orders them).
insert into public.posts (
    id, account_id, platform, platform_post_id, content_type, text_content, created_at_platform
)
values
('00000000-0000-4000-8000-00000000000a', tests.id('account', 'alice'), 'strava', 'page-4a', 'activity', 'page 4a', '2001-01-01 04:00:00+00'),
('00000000-0000-4000-8000-00000000000b', tests.id('account', 'alice'), 'strava', 'page-4b', 'activity', 'page 4b', '2001-01-01 04:00:00+00');

select ok(
    (
        select 'plan_cache_mode=force_generic_plan' = any(proconfig) from pg_proc
        where oid = 'public.feed(public.platform_enum[], public.content_type_enum[], timestamptz, timestamptz, text, integer, text, integer, boolean)'::regprocedure
    ),
    'the usual page keeps its plan (a filtered or searched one is planned for its values, by EXECUTE)'
);

select tests.authenticate_as('alice');
create temporary table t_cursor as
select
    f.id,
    f.text_content,
    f.cursor
from public.feed(p_until => '2002-01-01', p_limit => 100) as f;
-- The cursor as feed_cursor wrote it before this form (to_char): clients may hold such cursors.
create temporary table t_old_cursor as
select
    p.text_content,
    translate(encode(convert_to(
        to_char(p.created_at_platform at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        || '|' || p.id::text, 'UTF8'
    ), 'base64'), E'+/=\n', '-_') as cursor -- noqa: RF04
from public.posts as p;

select is(
    (select array_agg(text_content) from public.feed(p_until => '2001-01-01 03:00:00+00')),
    array['page 2', 'page 1', 'old 1960', 'old 1950'],
    'until: only what is older, newest first'
);
select is(
    (select array_agg(text_content) from public.feed(p_since => '2001-01-01 02:00:00+00', p_until => '2001-01-01 05:00:00+00')),
    array['page 4b', 'page 4a', 'page 3', 'page 2'],
    'since and until together: from since, before until'
);
select is(
    (select array_agg(text_content) from public.feed(p_until => '2001-01-01 04:30:00+00')),
    (select array_agg(text_content) from public.feed(p_types => array['activity', 'post']::public.content_type_enum[], p_until => '2001-01-01 04:30:00+00')),
    'the usual page and a filtered one (planned for its values) agree'
);
select is(
    (select array_agg(text_content) from public.feed(p_until => '2001-01-01 04:00:00+00')),
    array['page 3', 'page 2', 'page 1', 'old 1960', 'old 1950'],
    'until is exclusive, whatever the ids of posts at that instant'
);
select is(
    (
        select array_agg(f.text_content) from public.feed(
            p_until => '2001-01-01 05:00:00+00', p_cursor => (
                select cursor from t_cursor
                where text_content = 'page 3'
            )
        ) as f
    ),
    array['page 2', 'page 1', 'old 1960', 'old 1950'],
    'a cursor nearer than until wins; a time with microseconds is continued right after'
);
select is(
    (
        select array_agg(f.text_content) from public.feed(
            p_until => '2001-01-01 03:00:00+00', p_cursor => (
                select cursor from t_cursor
                where text_content = 'page 5'
            )
        ) as f
    ),
    array['page 2', 'page 1', 'old 1960', 'old 1950'],
    'until nearer than a cursor wins'
);
select is(
    (
        select array_agg(f.text_content) from public.feed(
            p_since => '2001-01-01 02:00:00+00', p_cursor => (
                select cursor from t_cursor
                where text_content = 'page 4a'
            )
        ) as f
    ),
    array['page 3', 'page 2'],
    'a cursor with since: between them'
);
select is(
    (
        select array[
            (select text_content from public.feed(p_limit => 1, p_cursor => (
                select cursor from t_cursor
                where text_content = 'page 5'
            ))),
            (select text_content from public.feed(p_limit => 1, p_cursor => (
                select cursor from t_cursor
                where text_content = 'page 4b'
            )))
        ]
    ),
    array['page 4b', 'page 4a'],
    'posts at the same instant: a cursor walks them one by one, by id'
);
select is(
    (select array_agg(f.text_content) from public.feed(p_cursor => (
        select cursor from t_cursor
        where text_content = 'old 1960'
    )) as f),
    array['old 1950'],
    'a time before 1970 (and its half second) continues right after it'
);
select is(
    (
        select count(*)::int from t_cursor as n inner join t_old_cursor as o on n.text_content = o.text_content
        where
            (select array_agg(f.id) from public.feed(p_limit => 100, p_cursor => o.cursor) as f)
            is not distinct from (select array_agg(f.id) from public.feed(p_limit => 100, p_cursor => n.cursor) as f)
    ),
    8,
    'a cursor of the earlier form continues exactly where the current form of it does'
);
select is(
    (
        select count(*)::int from t_cursor
        where cursor !~ '^[A-Za-z0-9_-]+$'
    ),
    0,
    'cursors are URL-safe base64 without padding'
);

select is(
    (
        select array_agg(f.text_content) from public.feed(p_limit => 1, p_cursor => (
            select n.cursor from public.feed(p_limit => 1) as n
        )) as f
    ),
    array['far 20357'],
    'a cursor of a time with a 19-digit count of microseconds continues after it'
);
select ok(
    (
        select f.created_at_platform < '20357-04-17 18:14:27.999937+00' from public.feed(p_limit => 1, p_cursor => (
            select n.cursor from public.feed(p_limit => 1, p_offset => 1) as n
        )) as f
    ),
    'a cursor far from 1970 keeps its microseconds: the next page does not repeat the post'
);
select tests.clear_authentication();
select throws_ok(
    $$
        insert into public.posts (account_id, platform, platform_post_id, content_type, created_at_platform)
        values (tests.id('account', 'alice'), 'strava', 'never', 'activity', 'infinity')
    $$,
    '23514', null, 'a post''s time is finite'
);

-- The read API's one-statement page, called by the engine.
select tests.clear_authentication();
select is(
    (
        select array_agg(f.id) from trove_private.feed_for_reader(
            tests.id('user', 'alice'), null, null, null, '2002-01-01', null, 100, null, null, false
        ) as f
    ),
    (select array_agg(id) from t_cursor),
    'feed_for_reader: the page the user sees through the feed'
);
select is(
    (
        select count(*)::int from
            trove_private.feed_for_reader(
                tests.id('user', 'bob'), null, null, null, null, null, 100, null, null, false
            ) as f
        inner join public.posts as p on f.id = p.id
        where p.user_id <> tests.id('user', 'bob')
    ),
    0,
    'feed_for_reader: another user sees none of alice''s posts (RLS decides, as for the feed)'
);
select is(
    (
        select count(*)::int from
            trove_private.feed_for_reader(
                tests.id('user', 'alice'), null, null, null, null, null, 100, null, null, true
            ) as f
        inner join public.posts as p on f.id = p.id
        where not public.post_is_public(p)
    ),
    0,
    'feed_for_reader in public mode: only public posts'
);
select is(
    (select array[current_user::text, current_setting('role'), current_setting('request.jwt.claims', true)]),
    array['postgres', 'none', ''],
    'feed_for_reader: afterwards the caller is itself again (its role and claims)'
);
select throws_ok(
    $$ select * from trove_private.feed_for_reader(null, null, null, null, null, null, 20, null, null, false) $$,
    '22023', 'a reader is needed', 'feed_for_reader: no user, no page'
);
select ok(
    has_function_privilege('service_role', 'trove_private.feed_for_reader(uuid, public.platform_enum[], public.content_type_enum[], timestamptz, timestamptz, text, integer, text, integer, boolean)', 'execute'),
    'feed_for_reader: the engine (service_role) may call it'
);
select tests.authenticate_as('bob');
select throws_ok(
    format(
        'select * from trove_private.feed_for_reader(%L, null, null, null, null, null, 20, null, null, false)',
        tests.id('user', 'alice')
    ),
    '42501', null, 'feed_for_reader: a signed-in user cannot read as another'
);
select tests.authenticate_as_anon();
select throws_ok(
    format(
        'select * from trove_private.feed_for_reader(%L, null, null, null, null, null, 20, null, null, false)',
        tests.id('user', 'alice')
    ),
    '42501', null, 'feed_for_reader: anon cannot either'
);
select tests.clear_authentication();
select ok(
    not has_function_privilege('authenticated', 'trove_private.feed_for_reader(uuid, public.platform_enum[], public.content_type_enum[], timestamptz, timestamptz, text, integer, text, integer, boolean)', 'execute'),
    'feed_for_reader: authenticated holds no execute on it'
);

select finish();
rollback;
