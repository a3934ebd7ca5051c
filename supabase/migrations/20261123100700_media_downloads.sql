-- media_downloads: one row per media file to copy into storage. Dedup is by a stable media key from the
-- connector (Bluesky blob CID, Instagram media id, Strava photo id), not by URL: CDN URLs carry expiring
-- signatures and change on every fetch. Storage path: {user_id}/{platform}/{sha256(media_key)}.{ext}.
-- Which posts show a file is post_media's job (a file shared by two posts is still one row here).

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

    -- Work queue (trove_private.claim_work): due time and the lease of the worker downloading it.
    run_after timestamptz not null default now(),
    locked_by text,
    locked_until timestamptz,

    -- Where the downloaded file went and what it is, the extension coming from the sniffed type (hence
    -- stored, not derived). Written by the downloader.
    storage_path text,
    content_type text,
    byte_size bigint,
    content_sha256 text,
    downloaded_at timestamptz,

    constraint media_downloads_user_media_key unique (user_id, platform, media_key),
    constraint media_downloads_attempts_check check (attempts >= 0),
    constraint media_downloads_media_key_check check (media_key <> ''),
    constraint media_downloads_original_url_check check (original_url ~* '^https?://'),
    constraint media_downloads_byte_size_check check (byte_size >= 0),
    constraint media_downloads_downloaded_check check (
        status <> 'downloaded' or (storage_path is not null and content_type is not null and byte_size is not null)
    ),
    constraint media_downloads_storage_path_check check (
        storage_path ~ ('^[0-9a-f-]{36}/' || platform::text || '/[0-9a-f]{64}\.[a-z0-9]{2,5}$')
    )
);

create index media_downloads_ingested_post_id_idx on public.media_downloads (ingested_post_id);
create index media_downloads_user_id_idx on public.media_downloads (user_id);
create index media_downloads_status_idx on public.media_downloads (status);
create index media_downloads_status_attempts_idx on public.media_downloads (status, attempts);
create index media_downloads_ready_idx on public.media_downloads (run_after)
where status in ('pending', 'failed');
create index media_downloads_leased_idx on public.media_downloads (locked_until)
where status = 'downloading';

alter table public.media_downloads enable row level security;

revoke all on table public.media_downloads from anon, authenticated, service_role;
grant select on table public.media_downloads to authenticated;
grant select, insert, update, delete on table public.media_downloads to service_role;

create policy media_downloads_select_own on public.media_downloads
for select to authenticated
using ((select auth.uid()) = user_id);

-- Supabase Storage: a private bucket for the copies, each user reading only their own folder (seed 000).
-- Skipped where there is no storage schema (vanilla Postgres: the local file backend serves media).
do $storage$
begin
    if to_regclass('storage.buckets') is null then
        raise notice 'no storage schema here: media bucket not created';
        return;
    end if;
    insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
    values ('media', 'media', false, 52428800, array['image/*', 'video/*', 'audio/*'])
    on conflict (id) do nothing;
    if not exists (
        select 1 from pg_policies
        where schemaname = 'storage' and tablename = 'objects' and policyname = 'trove_users_read_own_media'
    ) then
        create policy trove_users_read_own_media on storage.objects
        for select to authenticated
        using (bucket_id = 'media' and (storage.foldername(name))[1] = (select auth.uid())::text);
    end if;
end;
$storage$;
