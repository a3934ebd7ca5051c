-- Each post's link to the original on its platform (a feed reader's link to it: JSON Feed's item url, Atom's
-- rel="alternate"). The platform's normalizer builds it (NormalizedPost.permalink), as every platform rule: SQL
-- only stores it. Posts stored before this migration get theirs when the sync next writes them.
alter table public.posts add column permalink text;

comment on column public.posts.permalink is
'the post''s page on its platform, built by the platform''s normalizer; null when the platform has none';

-- The feed gains the permalink as its last column (its arguments are unchanged). A function's result type
-- cannot change in place (create or replace refuses a new OUT column): it is dropped and created again, with
-- the same privileges. Public mode shows only public posts, so it shows only their permalinks.
drop function public.feed(
    public.platform_enum[], public.content_type_enum[], timestamptz, timestamptz, text, integer, text, integer, boolean
);

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
    cursor text,
    permalink text
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

revoke execute on function public.feed(
    public.platform_enum[], public.content_type_enum[], timestamptz, timestamptz, text, integer, text, integer, boolean
) from public, anon;
grant execute on function public.feed(
    public.platform_enum[], public.content_type_enum[], timestamptz, timestamptz, text, integer, text, integer, boolean
) to authenticated, service_role;
