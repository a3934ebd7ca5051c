-- A per-user version of the archive, bumped by every change to the user's posts: API caches key on it,
-- so a cached page is never served after that user's posts changed (and other users' caches stay warm).
create table public.archive_versions (
    user_id uuid primary key references public.users (id) on delete cascade,
    version bigint not null default 0, -- noqa: RF04
    changed_at timestamptz not null default now()
);

alter table public.archive_versions enable row level security;
revoke all on table public.archive_versions from anon, authenticated, service_role;
grant select on table public.archive_versions to authenticated;
grant select, insert, update, delete on table public.archive_versions to service_role;

create policy archive_versions_select_own on public.archive_versions
for select to authenticated
using ((select auth.uid()) = user_id);

-- Statement-level, from the transition table: one bump per user per statement, whatever the row count.
-- SECURITY DEFINER: a user's own cascade (disconnecting an account) must be able to bump it.
create function trove_private.bump_archive_versions()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into public.archive_versions as v (user_id, version, changed_at)
    select distinct c.user_id, 1, now()
    from changed as c
    where exists (select 1 from public.users as u where u.id = c.user_id)
    on conflict (user_id) do update set version = v.version + 1, changed_at = now();
    return null;
end;
$$;

revoke execute on function trove_private.bump_archive_versions() from public;

create trigger posts_bump_archive_versions_insert
after insert on public.posts
referencing new table as changed
for each statement execute function trove_private.bump_archive_versions();

create trigger posts_bump_archive_versions_update
after update on public.posts
referencing new table as changed
for each statement execute function trove_private.bump_archive_versions();

create trigger posts_bump_archive_versions_delete
after delete on public.posts
referencing old table as changed
for each statement execute function trove_private.bump_archive_versions();

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
