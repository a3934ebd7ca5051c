-- Where a downloaded file went and what it is: {user_id}/{platform}/{sha256(media_key)}.{ext}, the
-- extension coming from the sniffed type (hence stored, not derived). Written by the downloader.
alter table public.media_downloads
add column storage_path text,
add column content_type text,
add column byte_size bigint,
add column content_sha256 text,
add column downloaded_at timestamptz,
add constraint media_downloads_byte_size_check check (byte_size >= 0),
add constraint media_downloads_downloaded_check check (
    status <> 'downloaded' or (storage_path is not null and content_type is not null and byte_size is not null)
),
add constraint media_downloads_storage_path_check check (
    storage_path ~ '^[0-9a-f-]{36}/(bluesky|strava|instagram)/[0-9a-f]{64}\.[a-z0-9]{2,5}$'
);

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
