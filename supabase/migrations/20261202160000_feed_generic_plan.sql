-- A page's cursors cost a tenth of what they did: feed_cursor wrote the time with to_char() and, pinning its
-- search_path, was called row by row. It now writes microseconds since the epoch and, every name qualified
-- instead, is inlined into the query. The feed reads both forms.
create or replace function public.feed_cursor(p_created timestamptz, p_id uuid)
returns text
language sql
-- Stable, as extract() on a timestamptz is marked (though the epoch, all it reads here, is not zone-dependent):
-- a function marked immutable around a stable body is not inlined.
stable
parallel safe
as $$
    select pg_catalog.translate(pg_catalog.encode(pg_catalog.convert_to(
        case
            when pg_catalog.isfinite(p_created)
                then (pg_catalog.extract('epoch', p_created) operator(pg_catalog.*) 1000000)::bigint::text
            when p_created operator(pg_catalog.>) 'epoch' then 'infinity'
            else '-infinity'
        end operator(pg_catalog.||) '|' operator(pg_catalog.||) p_id::text, 'UTF8'), 'base64'), E'+/=\n', '-_')
$$;

-- A post's time is a time: the usual page's bounds below are infinite where none is given, and a post at an
-- infinite time would fall outside them. No writer makes one (a normalizer's time is a real one).
alter table public.posts
add constraint posts_created_at_platform_finite check (isfinite(created_at_platform));

-- The feed's usual page (no platform, type or search filter: every API page, the web archive's first page,
-- every feed reader) is planned once per connection, not on every call (issue 16: planning cost more than
-- running it). Until now the whole function forced a custom plan, because a generic plan cannot use the
-- feed index for `(p_until is null or ... < p_until)`. The usual page now says its bounds so the index can
-- (a missing bound is an infinite one) and keeps a cached generic plan; a filtered or searched page runs as
-- EXECUTE, planned for its values every time, as before (a rare type or word must not walk the whole feed).
-- The result, arguments and privileges are unchanged.
create or replace function public.feed(
    p_platforms public.platform_enum[] default null,
    p_types public.content_type_enum[] default null,
    p_since timestamptz default null,
    p_until timestamptz default null,
    p_query text default null,
    p_limit integer default 20,
    p_cursor text default null,
    p_offset integer default null,
    p_public_only boolean default false
)
returns table (
    id uuid,
    platform public.platform_enum,
    content_type public.content_type_enum,
    text_content text,
    created_at_platform timestamptz,
    updated_at_platform timestamptz,
    post_data jsonb,
    media jsonb,
    cursor text,
    permalink text
)
language plpgsql
stable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
    after_created timestamptz;
    after_id uuid;
    decoded text;
    -- The usual page's bounds: from a time, and before a (time, id) position, a missing bound infinite.
    from_time timestamptz := coalesce(p_since, '-infinity');
    before_time timestamptz := coalesce(p_until, 'infinity');
    before_id uuid := '00000000-0000-0000-0000-000000000000';  -- (time, the least id): before the time
begin
    if p_limit is null or p_limit < 1 or p_limit > 100 then
        raise exception 'limit must be between 1 and 100' using errcode = '22023';
    end if;
    if p_offset is not null and (p_offset < 0 or p_cursor is not null) then
        raise exception 'offset must be >= 0 and cannot be combined with cursor' using errcode = '22023';
    end if;
    if p_cursor is not null then
        begin
            decoded := convert_from(decode(rpad(translate(p_cursor, '-_', '+/'),
                ((length(p_cursor) + 3) / 4) * 4, '='), 'base64'), 'UTF8');
            -- Microseconds since the epoch (feed_cursor's form since this migration), or a time as text
            -- (the form before it: cursors that clients hold keep working).
            -- Microseconds since the epoch (feed_cursor's form since this migration), counted exactly in
            -- whole days and the rest (a product with a float factor loses microseconds far from 1970; the
            -- zoneless timestamp keeps days 24 hours long), or a time as text (the form before it: cursors
            -- that clients hold keep working).
            after_created := case
                when split_part(decoded, '|', 1) ~ '^-?[0-9]{1,19}$' then (
                    'epoch'::timestamp
                    + (split_part(decoded, '|', 1)::bigint / 86400000000) * interval '1 day'
                    + (split_part(decoded, '|', 1)::bigint % 86400000000) * interval '1 microsecond'
                ) at time zone 'UTC'
                else split_part(decoded, '|', 1)::timestamptz
            end;
            after_id := split_part(decoded, '|', 2)::uuid;
        exception when others then
            raise exception 'invalid cursor' using errcode = '22023';
        end;
    end if;
    if p_platforms is null and p_types is null and p_query is null then
        -- One upper bound, the nearer of `until` and the cursor: with two, the index scan starts at the wider.
        -- Plain values, not coalesce() in the query: under RLS only a qual Postgres knows cannot leak becomes
        -- an index condition, and it does not know that of coalesce().
        if p_cursor is not null and (after_created, after_id) < (before_time, before_id) then
            before_time := after_created;
            before_id := after_id;
        end if;
        return query
        select
            p.id,
            p.platform,
            p.content_type,
            p.text_content,
            p.created_at_platform,
            p.updated_at_platform,
            case when p_public_only then p.public_data else ip.post_data end,
            coalesce(m.media, '[]'::jsonb),
            public.feed_cursor(p.created_at_platform, p.id),
            p.permalink
        from public.posts as p
        left join public.ingested_posts as ip
            on ip.platform = p.platform and ip.platform_post_id = p.platform_post_id
        left join lateral (
            select jsonb_agg(jsonb_build_object(
                'id', md.id, 'media_key', md.media_key, 'status', md.status, 'original_url', md.original_url,
                'storage_path', md.storage_path, 'content_type', md.content_type
            ) order by pm.position, md.created_at) as media
            from public.post_media as pm
            inner join public.media_downloads as md on pm.media_download_id = md.id
            where pm.ingested_post_id = ip.id
        ) as m on true
        where p.user_id = (select auth.uid())
            and not p.deleted_on_platform
            and p.created_at_platform >= from_time
            and (p.created_at_platform, p.id) < (before_time, before_id)
            and (not p_public_only or public.post_is_public(p))
        order by p.created_at_platform desc, p.id desc
        limit p_limit
        offset coalesce(p_offset, 0);
        return;
    end if;
    return query execute $query$
        select
            p.id,
            p.platform,
            p.content_type,
            p.text_content,
            p.created_at_platform,
            p.updated_at_platform,
            case when $9 then p.public_data else ip.post_data end,
            coalesce(m.media, '[]'::jsonb),
            public.feed_cursor(p.created_at_platform, p.id),
            p.permalink
        from public.posts as p
        left join public.ingested_posts as ip
            on ip.platform = p.platform and ip.platform_post_id = p.platform_post_id
        left join lateral (
            select jsonb_agg(jsonb_build_object(
                'id', md.id, 'media_key', md.media_key, 'status', md.status, 'original_url', md.original_url,
                'storage_path', md.storage_path, 'content_type', md.content_type
            ) order by pm.position, md.created_at) as media
            from public.post_media as pm
            inner join public.media_downloads as md on pm.media_download_id = md.id
            where pm.ingested_post_id = ip.id
        ) as m on true
        where p.user_id = (select auth.uid())
            and not p.deleted_on_platform
            and ($1 is null or p.platform = any($1))
            and ($2 is null or p.content_type = any($2))
            and ($3 is null or p.created_at_platform >= $3)
            and ($4 is null or p.created_at_platform < $4)
            and ($5 is null or p.search_vector @@ pg_catalog.websearch_to_tsquery('english', $5))
            and (not $9 or public.post_is_public(p))
            and ($7 is null or (p.created_at_platform, p.id) < ($10, $11))
        order by p.created_at_platform desc, p.id desc
        limit $6
        offset coalesce($8, 0)
    $query$
    using p_platforms, p_types, p_since, p_until, p_query, p_limit, p_cursor, p_offset, p_public_only,
        after_created, after_id;
end;
$$;
