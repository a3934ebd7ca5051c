-- The read side (seed 7, 10): a feed with keyset and offset pagination, ranked search with per-platform
-- facets, per-account stats, all SECURITY INVOKER so RLS decides what each caller sees (PostgREST RPC or the
-- HTTP API acting as the user). Public mode (a user's website through an API key) shows only what is
-- visible to everyone on its platform, and of its raw data only the fields its normalizer allowed.

-- What may leave through public mode: published, not deleted, visible to everyone on its platform. Whether
-- a post is visible to everyone, and which of its raw fields a public reader sees (posts.public_data, an
-- allow-list), is the platform normalizer's decision, stored on the post: no platform rule lives here.
create function public.post_is_public(p_post public.posts)
returns boolean
language sql
immutable
set search_path = ''
as $$
    select p_post.published and not p_post.deleted_on_platform and p_post.visibility = 'public'
$$;

-- Opaque keyset cursor: base64 of "<created_at_platform>|<id>".
create function public.feed_cursor(p_created timestamptz, p_id uuid)
returns text
language sql
immutable
set search_path = ''
as $$
    select translate(encode(convert_to(to_char(p_created at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        || '|' || p_id::text, 'UTF8'), 'base64'), E'+/=\n', '-_')
$$;

-- Each call is planned for its own arguments: after five calls PL/pgSQL may switch to a generic plan, which
-- cannot see that p_cursor or p_query is null and sorts all of a user's posts (measured: 1.4 ms -> 39 ms for a
-- first page of 10,000 posts).
create function public.feed(
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
    cursor text
)
language plpgsql
stable
set search_path = ''
set plan_cache_mode = force_custom_plan
as $$
declare
    after_created timestamptz;
    after_id uuid;
    decoded text;
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
            after_created := split_part(decoded, '|', 1)::timestamptz;
            after_id := split_part(decoded, '|', 2)::uuid;
        exception when others then
            raise exception 'invalid cursor' using errcode = '22023';
        end;
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
        public.feed_cursor(p.created_at_platform, p.id)
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
        and (p_platforms is null or p.platform = any(p_platforms))
        and (p_types is null or p.content_type = any(p_types))
        and (p_since is null or p.created_at_platform >= p_since)
        and (p_until is null or p.created_at_platform < p_until)
        and (p_query is null or p.search_vector @@ websearch_to_tsquery('english', p_query))
        and (not p_public_only or public.post_is_public(p))
        and (p_cursor is null or (p.created_at_platform, p.id) < (after_created, after_id))
    order by p.created_at_platform desc, p.id desc
    limit p_limit
    offset coalesce(p_offset, 0);
end;
$$;

create function public.search_posts(
    p_query text,
    p_platforms public.platform_enum[] default null,
    p_limit integer default 20,
    p_offset integer default 0
)
returns table (
    id uuid,
    platform public.platform_enum,
    content_type public.content_type_enum,
    text_content text,
    created_at_platform timestamptz,
    rank real,
    headline text
)
language sql
stable
set search_path = ''
as $$
    select p.id, p.platform, p.content_type, p.text_content, p.created_at_platform,
        ts_rank_cd(p.search_vector, q.query) as rank,
        ts_headline('english', coalesce(p.text_content, ''), q.query, 'MaxFragments=2, MaxWords=20, MinWords=5')
    from public.posts as p, websearch_to_tsquery('english', p_query) as q (query)
    where p.user_id = (select auth.uid())
        and not p.deleted_on_platform
        and p.search_vector @@ q.query
        and (p_platforms is null or p.platform = any(p_platforms))
    order by rank desc, p.created_at_platform desc, p.id desc
    limit least(greatest(p_limit, 1), 100)
    offset greatest(p_offset, 0)
$$;

create function public.search_facets(p_query text)
returns table (platform public.platform_enum, matches bigint)
language sql
stable
set search_path = ''
as $$
    select p.platform, count(*)
    from public.posts as p
    where p.user_id = (select auth.uid())
        and not p.deleted_on_platform
        and p.search_vector @@ websearch_to_tsquery('english', p_query)
    group by p.platform
    order by p.platform
$$;

create function public.account_stats()
returns table (
    account_id uuid,
    platform public.platform_enum,
    username text,
    content_type public.content_type_enum,
    posts bigint,
    first_post_at timestamptz,
    last_post_at timestamptz,
    last_sync_at timestamptz
)
language sql
stable
set search_path = ''
as $$
    select ca.id, ca.platform, ca.username, p.content_type, count(p.id), min(p.created_at_platform),
        max(p.created_at_platform), ca.last_sync_at
    from public.connected_accounts as ca
    left join public.posts as p on p.account_id = ca.id and not p.deleted_on_platform
    where ca.user_id = (select auth.uid())
    group by ca.id, ca.platform, ca.username, p.content_type, ca.last_sync_at
    order by ca.platform, ca.username, p.content_type
$$;

revoke execute on function public.post_is_public(public.posts) from public, anon;
revoke execute on function public.feed_cursor(timestamptz, uuid) from public, anon;
revoke execute on function public.feed(
    public.platform_enum[], public.content_type_enum[], timestamptz, timestamptz, text, integer, text, integer, boolean
) from public, anon;
revoke execute on function public.search_posts(text, public.platform_enum[], integer, integer) from public, anon;
revoke execute on function public.search_facets(text) from public, anon;
revoke execute on function public.account_stats() from public, anon;
grant execute on function public.post_is_public(public.posts) to authenticated, service_role;
grant execute on function public.feed_cursor(timestamptz, uuid) to authenticated, service_role;
grant execute on function public.feed(
    public.platform_enum[], public.content_type_enum[], timestamptz, timestamptz, text, integer, text, integer, boolean
) to authenticated, service_role;
grant execute on function public.search_posts(text, public.platform_enum[], integer, integer)
to authenticated, service_role;
grant execute on function public.search_facets(text) to authenticated, service_role;
grant execute on function public.account_stats() to authenticated, service_role;
