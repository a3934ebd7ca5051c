-- A media file that lands in storage changes what readers get (our signed copy instead of the platform's
-- expiring URL): bump the owner's archive version so cached API pages are not served for it. Only that
-- transition: the downloader's other writes (claims, attempts, errors) leave caches alone.
-- SECURITY DEFINER like bump_archive_versions: archive_versions is written by nobody else.
create function trove_private.bump_archive_version_for_copy()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into public.archive_versions as v (user_id, version, changed_at)
    values (new.user_id, 1, now())
    on conflict (user_id) do update set version = v.version + 1, changed_at = now();
    return null;
end;
$$;

revoke execute on function trove_private.bump_archive_version_for_copy() from public;

create trigger media_downloads_bump_archive_version
after update of status on public.media_downloads
for each row
when (new.status = 'downloaded' and old.status is distinct from 'downloaded')
execute function trove_private.bump_archive_version_for_copy();
