-- A per-user version of the archive: API caches and ETags key on it, so a cached page is never served after
-- anything a reader of that user's archive could see changed (and other users' caches stay warm). It is
-- bumped here, by triggers, whichever path wrote the change (webhook, poll, backfill, reprocess):
--   posts           every write (insert, update, delete): its text, visibility and public fields among them;
--   ingested_posts  a raw post whose data changed (or that appeared or went away) while its post exists: the
--                   owner reads the raw post; the work-queue writes (claims, attempts, errors, detail_pending)
--                   leave caches alone;
--   post_media      a post gaining, losing or reordering a media file;
--   media_downloads what the read API shows of a file changing: its copy landing or going away, its type or
--                   storage path, or its original URL while no copy is served.
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

-- post_media rows carry their user: the statement-level function bumps each of them once.
create trigger post_media_bump_archive_versions_insert
after insert on public.post_media
referencing new table as changed
for each statement execute function trove_private.bump_archive_versions();

create trigger post_media_bump_archive_versions_update
after update on public.post_media
referencing new table as changed
for each statement execute function trove_private.bump_archive_versions();

create trigger post_media_bump_archive_versions_delete
after delete on public.post_media
referencing old table as changed
for each statement execute function trove_private.bump_archive_versions();

-- A raw post's owner is its post's: a raw post whose post is not written yet changes nothing a reader sees (the
-- post's insert bumps). Inserts and deletes are statement-level, from the transition table (one bump per user
-- per statement: an account's cascade is one bump). Updates are row-level with a WHEN: this table is a work
-- queue, and its claims, leases and completions (batches of status updates) must cost nothing, while the
-- worker changes raw data one post per statement anyway. SECURITY DEFINER like bump_archive_versions:
-- archive_versions is written by nobody else, and a user's own cascade must be able to bump it.
create function trove_private.bump_archive_versions_for_raw_posts()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if tg_level = 'ROW' then
        insert into public.archive_versions as v (user_id, version, changed_at)
        select distinct p.user_id, 1, now()
        from public.posts as p
        where (
            (p.platform = new.platform and p.platform_post_id = new.platform_post_id)
            or (p.platform = old.platform and p.platform_post_id = old.platform_post_id)
        )
        and exists (select 1 from public.users as u where u.id = p.user_id)
        order by p.user_id
        on conflict (user_id) do update set version = v.version + 1, changed_at = now();
    else
        insert into public.archive_versions as v (user_id, version, changed_at)
        select distinct p.user_id, 1, now()
        from changed as c
        inner join public.posts as p on c.platform = p.platform and c.platform_post_id = p.platform_post_id
        where exists (select 1 from public.users as u where u.id = p.user_id)
        order by p.user_id
        on conflict (user_id) do update set version = v.version + 1, changed_at = now();
    end if;
    return null;
end;
$$;

revoke execute on function trove_private.bump_archive_versions_for_raw_posts() from public;

create trigger ingested_posts_bump_archive_versions_insert
after insert on public.ingested_posts
referencing new table as changed
for each statement execute function trove_private.bump_archive_versions_for_raw_posts();

create trigger ingested_posts_bump_archive_versions_update
after update on public.ingested_posts
for each row
when (
    old.post_data is distinct from new.post_data
    or old.platform is distinct from new.platform
    or old.platform_post_id is distinct from new.platform_post_id
)
execute function trove_private.bump_archive_versions_for_raw_posts();

create trigger ingested_posts_bump_archive_versions_delete
after delete on public.ingested_posts
referencing old table as changed
for each statement execute function trove_private.bump_archive_versions_for_raw_posts();

-- A media file: a copy that lands in storage changes what readers get (our signed copy instead of the
-- platform's expiring URL), and so does a copy going away or a change of its key, type, storage path, or
-- original URL while no copy is served. The downloader's other writes (claims, attempts, errors,
-- failed/unavailable) leave caches alone. SECURITY DEFINER like bump_archive_versions: archive_versions is
-- written by nobody else.
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
after update on public.media_downloads
for each row
when (
    (old.status = 'downloaded') is distinct from (new.status = 'downloaded')
    or old.media_key is distinct from new.media_key
    or old.content_type is distinct from new.content_type
    or old.storage_path is distinct from new.storage_path
    or (new.status <> 'downloaded' and old.original_url is distinct from new.original_url)
)
execute function trove_private.bump_archive_version_for_copy();
