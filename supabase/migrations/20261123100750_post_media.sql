-- post_media: which media each post shows, in order. media_downloads holds one row per file (deduplicated by
-- its stable key, DESIGN.md), and that row names only the post that brought the file first; a file shared by
-- two posts (the same photo on two activities, a repost) must still appear on both.
create table public.post_media (
    ingested_post_id uuid not null references public.ingested_posts (id) on delete cascade,
    media_download_id uuid not null references public.media_downloads (id) on delete cascade,
    user_id uuid not null references public.users (id) on delete cascade,
    position integer not null default 0, -- noqa: RF04
    created_at timestamptz not null default now(),
    primary key (ingested_post_id, media_download_id),
    constraint post_media_position_check check (position >= 0)
);

create index post_media_media_download_id_idx on public.post_media (media_download_id);
create index post_media_user_id_idx on public.post_media (user_id);

alter table public.post_media enable row level security;

revoke all on table public.post_media from anon, authenticated, service_role;
grant select on table public.post_media to authenticated;
grant select, insert, update, delete on table public.post_media to service_role;

create policy post_media_select_own on public.post_media
for select to authenticated
using ((select auth.uid()) = user_id);

-- Whoever inserts a media row, the post that brought it shows it (the worker links later posts itself).
create function trove_private.link_new_media_to_post()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    insert into public.post_media (ingested_post_id, media_download_id, user_id, position)
    values (
        new.ingested_post_id,
        new.id,
        new.user_id,
        (select count(*)::integer from public.post_media as pm where pm.ingested_post_id = new.ingested_post_id)
    )
    on conflict (ingested_post_id, media_download_id) do nothing;
    return null;
end;
$$;

revoke execute on function trove_private.link_new_media_to_post() from public;

create trigger media_downloads_link_to_post
after insert on public.media_downloads
for each row execute function trove_private.link_new_media_to_post();
