-- The seeds' public_posts materialized view, done right: only posts visible to everyone on their platform,
-- the raw fields their normalizer allowed (never locations or routes), media that was copied. Materialized
-- views have no RLS, so it is for the service role only (the HTTP API serves it per user). Writes mark it stale; pg_cron refreshes it
-- concurrently every 5 minutes when stale (seed 10.2; the job is registered with the other schedules).
create materialized view public.public_posts as
select
    p.id,
    p.user_id,
    p.platform,
    p.content_type,
    p.text_content,
    p.created_at_platform,
    p.public_data as post_data,
    coalesce((
        select
            jsonb_agg(jsonb_build_object(
                'media_key', md.media_key, 'storage_path', md.storage_path, 'content_type', md.content_type
            ) order by pm.position, md.created_at)
        from public.post_media as pm
        inner join public.media_downloads as md on pm.media_download_id = md.id
        where pm.ingested_post_id = ip.id and md.status = 'downloaded'
    ), '[]'::jsonb) as media
from public.posts as p
left join public.ingested_posts as ip
    on p.platform = ip.platform and p.platform_post_id = ip.platform_post_id
where public.post_is_public(p);

create unique index public_posts_id_idx on public.public_posts (id);
create index public_posts_user_created_idx on public.public_posts (user_id, created_at_platform desc);

revoke all on table public.public_posts from anon, authenticated, service_role;
grant select on table public.public_posts to service_role;

create table public.materialized_view_state (
    name text primary key, -- noqa: RF04
    stale boolean not null default false,
    refreshed_at timestamptz
);

alter table public.materialized_view_state enable row level security;
revoke all on table public.materialized_view_state from anon, authenticated, service_role;
grant select, insert, update, delete on table public.materialized_view_state to service_role;

insert into public.materialized_view_state (name, stale, refreshed_at) values ('public_posts', false, now());

-- SECURITY DEFINER: users' own writes (disconnecting an account cascades to its posts) must be able to
-- flag the view without any right on the bookkeeping table.
create function trove_private.mark_public_posts_stale()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    update public.materialized_view_state set stale = true where name = 'public_posts' and not stale;
    return null;
end;
$$;

create trigger posts_mark_public_posts_stale
after insert or update or delete on public.posts
for each statement execute function trove_private.mark_public_posts_stale();

create trigger ingested_posts_mark_public_posts_stale
after insert or update or delete on public.ingested_posts
for each statement execute function trove_private.mark_public_posts_stale();

create trigger media_downloads_mark_public_posts_stale
after insert or update or delete on public.media_downloads
for each statement execute function trove_private.mark_public_posts_stale();

create trigger post_media_mark_public_posts_stale
after insert or update or delete on public.post_media
for each statement execute function trove_private.mark_public_posts_stale();

-- True when it refreshed. The flag is cleared first: writes during the refresh mark it stale again.
create function trove_private.refresh_public_posts()
returns boolean
language plpgsql
set search_path = ''
as $$
begin
    update public.materialized_view_state set stale = false where name = 'public_posts' and stale;
    if not found then
        return false;
    end if;
    refresh materialized view concurrently public.public_posts;
    update public.materialized_view_state set refreshed_at = now() where name = 'public_posts';
    return true;
end;
$$;

revoke execute on function trove_private.mark_public_posts_stale() from public;
revoke execute on function trove_private.refresh_public_posts() from public;
grant execute on function trove_private.refresh_public_posts() to service_role;
