-- media_downloads: one row per media file to copy into storage. Dedup is by a stable media key from the
-- connector (Bluesky blob CID, Instagram media id, Strava photo id), not by URL: CDN URLs carry expiring
-- signatures and change on every fetch. Storage path: {user_id}/{platform}/{sha256(media_key)}.{ext}.

create table public.media_downloads (
    id uuid primary key default gen_random_uuid(),
    ingested_post_id uuid not null references public.ingested_posts (id) on delete cascade,
    user_id uuid not null references public.users (id) on delete cascade,
    platform public.platform_enum not null,

    media_key text not null,
    original_url text not null,

    status public.download_status_enum not null default 'pending',
    attempts integer not null default 0,
    error text,
    last_attempt_at timestamptz,

    created_at timestamptz not null default now(),

    constraint media_downloads_user_media_key unique (user_id, platform, media_key),
    constraint media_downloads_attempts_check check (attempts >= 0),
    constraint media_downloads_media_key_check check (media_key <> ''),
    constraint media_downloads_original_url_check check (original_url ~* '^https?://')
);

create index media_downloads_ingested_post_id_idx on public.media_downloads (ingested_post_id);
create index media_downloads_user_id_idx on public.media_downloads (user_id);
create index media_downloads_status_idx on public.media_downloads (status);
create index media_downloads_status_attempts_idx on public.media_downloads (status, attempts);

alter table public.media_downloads enable row level security;

revoke all on table public.media_downloads from anon, authenticated, service_role;
grant select on table public.media_downloads to authenticated;
grant select, insert, update, delete on table public.media_downloads to service_role;

create policy media_downloads_select_own on public.media_downloads
for select to authenticated
using ((select auth.uid()) = user_id);
